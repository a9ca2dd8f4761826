// medvec case viewer: plain JavaScript over the JSON API of `medvec serve`. The token arrived
// as ?token= on the first visit and is now an HttpOnly cookie, so requests carry it by
// themselves; it is dropped from the address bar. Payload values are put in the page as text
// only (never as HTML).
"use strict";

const api = "/api/v1/collections";
const $ = (id) => document.getElementById(id);
const state = { collection: null, fields: [], heads: [], mode: "upload", file: null, queryId: null };

if (location.search.includes("token=")) {
  history.replaceState(null, "", location.pathname);
}

function element(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function status(text, isError) {
  $("status").textContent = text;
  $("status").classList.toggle("error", Boolean(isError));
}

async function call(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function fillSelect(select, values, first) {
  select.replaceChildren();
  if (first !== undefined) select.append(element("option", { value: "" }, first));
  for (const value of values) select.append(element("option", { value }, value));
}

async function loadCollections() {
  const { collections } = await call(api);
  fillSelect($("collection"), collections.map((c) => c.name));
  state.collections = collections;
  if (collections.length) await chooseCollection(collections[0].name);
  else status("This store has no collections.");
}

async function chooseCollection(name) {
  state.collection = state.collections.find((c) => c.name === name);
  const vectors = state.collection.schema.vectors.map((v) => v.name);
  fillSelect($("field"), vectors);
  const base = `${api}/${encodeURIComponent(name)}`;
  const [{ fields }, { heads }] = await Promise.all([call(`${base}/fields`), call(`${base}/heads`)]);
  state.fields = fields;
  state.heads = heads;
  buildFilters();
  buildShown();
  fillSelect($("head"), heads.map((h) => h.name));
  $("head-section").hidden = heads.length === 0;
  $("grid").replaceChildren();
  $("chart").replaceChildren();
  status(`${state.collection.count} records`);
}

// One control per payload field: a dropdown of its values for strings (when the server listed
// them), min/max for numbers, yes/no for bools.
function buildFilters() {
  const box = $("filters");
  box.replaceChildren();
  for (const field of state.fields) {
    const row = element("div", { class: "filter", "data-field": field.name, "data-type": field.type });
    row.append(element("span", {}, field.name));
    if (field.type === "string" && field.values) {
      const select = element("select", { name: field.name });
      fillSelect(select, field.values, "any");
      row.append(select);
    } else if (field.type === "bool") {
      const select = element("select", { name: field.name });
      fillSelect(select, ["true", "false"], "any");
      row.append(select);
    } else if (field.type === "int" || field.type === "float") {
      row.append(element("input", { name: `${field.name}-min`, type: "number", step: "any", placeholder: "min" }));
      row.append(element("input", { name: `${field.name}-max`, type: "number", step: "any", placeholder: "max" }));
    } else {
      continue; // too many distinct strings for a dropdown
    }
    box.append(row);
  }
  showFilter();
}

function literal(type, text) {
  const number = Number(text);
  if (type === "int") return String(Math.round(number));
  return Number.isInteger(number) ? number.toFixed(1) : String(number);
}

// The filter expression of the controls, e.g. `dx = "mel" and age >= 50`.
function filterText() {
  const parts = [];
  for (const row of $("filters").querySelectorAll(".filter")) {
    const { field, type } = row.dataset;
    const select = row.querySelector("select");
    if (select && select.value !== "") {
      parts.push(type === "bool" ? `${field} = ${select.value}` : `${field} = ${JSON.stringify(select.value)}`);
    }
    const [min, max] = row.querySelectorAll("input");
    if (min && min.value !== "" && Number.isFinite(Number(min.value))) parts.push(`${field} >= ${literal(type, min.value)}`);
    if (max && max.value !== "" && Number.isFinite(Number(max.value))) parts.push(`${field} <= ${literal(type, max.value)}`);
  }
  return parts.join(" and ");
}

function showFilter() {
  $("filter-text").textContent = filterText();
}

function buildShown() {
  const names = state.fields.map((f) => f.name);
  const label = state.heads.length ? state.heads[0].meta.label_field : names.find((n) => /^(dx|label|diagnosis)$/i.test(n));
  fillSelect($("label"), names, "none");
  $("label").value = label || "";
  const box = $("shown");
  box.replaceChildren();
  names.forEach((name, i) => {
    const box_ = element("input", { type: "checkbox", value: name });
    box_.checked = i < 3 && name !== label;
    const wrap = element("label");
    wrap.append(box_, ` ${name}`);
    box.append(wrap);
  });
}

function searchOptions() {
  const options = { field: $("field").value, k: Number($("k").value) || 12 };
  const filter = filterText();
  if (filter) options.filter = filter;
  const shift = Number($("shift").value);
  if (shift > 0) options.shift = shift;
  return options;
}

async function search() {
  if (!state.collection) return;
  const base = `${api}/${encodeURIComponent(state.collection.name)}`;
  const options = searchOptions();
  status("Searching…");
  try {
    let result;
    if (state.mode === "upload") {
      if (!state.file) throw new Error("choose or drop a photo first");
      const query = new URLSearchParams(Object.entries(options).map(([k, v]) => [k, String(v)]));
      result = await call(`${base}/search/upload?${query}`, { method: "POST", body: state.file });
      state.queryId = null;
    } else if (state.mode === "case") {
      const id = $("case-id").value.trim();
      if (!id) throw new Error("type a stored record id");
      result = await call(`${base}/search`, post({ ...options, like: id }));
      state.queryId = id;
    } else {
      const text = $("text").value.trim();
      if (!text) throw new Error("type a clinical description");
      result = await call(`${base}/search`, post({ ...options, text }));
      state.queryId = null;
    }
    showHits(result.hits);
    status(`${result.hits.length} similar cases`);
    await classifyQuery();
  } catch (error) {
    status(error.message, true);
  }
}

function post(body) {
  return { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
}

function showHits(hits) {
  const label = $("label").value;
  const shown = [...$("shown").querySelectorAll("input:checked")].map((b) => b.value);
  const name = encodeURIComponent(state.collection.name);
  const cards = hits.map((hit) => {
    const card = element("article", { class: "card", tabindex: "0", "data-id": hit.id, "data-score": String(hit.score) });
    card.append(element("img", { src: `${api}/${name}/records/${encodeURIComponent(hit.id)}/thumbnail`, alt: hit.id, loading: "lazy" }));
    const meta = element("div", { class: "meta" });
    meta.append(element("span", { class: "score" }, hit.score.toFixed(3)), element("div", { class: "id" }, hit.id));
    if (label && hit.payload[label] != null) meta.append(element("span", { class: "label" }, String(hit.payload[label])));
    const list = element("dl");
    for (const field of shown) {
      if (field === label || hit.payload[field] == null) continue;
      list.append(element("dt", {}, field), element("dd", {}, String(hit.payload[field])));
    }
    meta.append(list);
    card.append(meta);
    return card;
  });
  $("grid").replaceChildren(...cards);
}

// The saved head's class probabilities for the query case: a stored case by id, or the uploaded
// photo when the head's fields all hold images (a head that also reads text says so instead).
async function classifyQuery() {
  const chart = $("chart");
  chart.replaceChildren();
  const head = $("head").value;
  if (!head) return;
  const url = `${api}/${encodeURIComponent(state.collection.name)}/heads/${encodeURIComponent(head)}/classify`;
  let predictions;
  if (state.queryId) {
    ({ predictions } = await call(url, post({ ids: [state.queryId] })));
  } else if (state.mode === "upload" && state.file) {
    try {
      ({ predictions } = await call(`${url}/upload`, { method: "POST", body: state.file }));
    } catch (error) {
      chart.append(element("p", {}, error.message));
      return;
    }
  } else {
    chart.append(element("p", {}, "Pick a stored case or upload a photo to see its class probabilities."));
    return;
  }
  const prediction = predictions[0];
  const classes = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [name, p] of classes) {
    const bar = element("div", { class: name === prediction.predicted ? "bar top" : "bar", "data-class": name, "data-p": String(p) });
    const track = element("div", { class: "track" });
    const fill = element("div", { class: "fill" });
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    track.append(fill);
    bar.append(element("span", {}, name), track, element("span", {}, `${(100 * p).toFixed(1)}%`));
    chart.append(bar);
  }
}

function setMode(mode) {
  state.mode = mode;
  for (const tab of document.querySelectorAll(".tabs button")) tab.classList.toggle("active", tab.dataset.mode === mode);
  for (const pane of document.querySelectorAll(".mode")) pane.hidden = pane.dataset.mode !== mode;
}

function chooseFile(file) {
  state.file = file || null;
  const preview = $("preview");
  preview.hidden = true;
  if (!file || !file.type.startsWith("image/")) return;
  // A data: URL: the page's policy allows images from itself and data: only.
  const reader = new FileReader();
  reader.onload = () => { preview.src = reader.result; preview.hidden = false; };
  reader.readAsDataURL(file);
}

function wire() {
  $("collection").addEventListener("change", (e) => chooseCollection(e.target.value).catch((err) => status(err.message, true)));
  $("search").addEventListener("click", search);
  $("filters").addEventListener("input", showFilter);
  $("filters").addEventListener("change", showFilter);
  $("file").addEventListener("change", (e) => { chooseFile(e.target.files[0]); search(); });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    chooseFile(e.dataTransfer.files[0]);
    search();
  });
  for (const tab of document.querySelectorAll(".tabs button")) tab.addEventListener("click", () => setMode(tab.dataset.mode));
  $("shift").addEventListener("input", () => { $("shift-value").textContent = $("shift").value; });
  $("head").addEventListener("change", () => classifyQuery().catch((err) => status(err.message, true)));
  $("grid").addEventListener("click", (e) => {
    const card = e.target.closest(".card");
    if (!card) return;
    setMode("case");
    $("case-id").value = card.dataset.id;
    search();
  });
  $("grid").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target.classList.contains("card")) e.target.click();
  });
  $("case-id").addEventListener("keydown", (e) => { if (e.key === "Enter") search(); });
}

wire();
loadCollections().catch((error) => status(error.message, true));
