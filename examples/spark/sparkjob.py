"""What both Spark jobs share: a SparkSession that works offline in local mode, and shipping
this folder's modules to the executors.

Local masters (``local``, ``local[2]``, ``local[*]``) get settings for a laptop or a CI box
with no network: no web UI or progress bars, the driver bound to 127.0.0.1, few shuffle
partitions, and the executors' Python set to the driver's (the virtualenv with medvec in it).
On a cluster those choices belong to the cluster's configuration (``spark-submit --conf``), so
nothing is forced. Nothing here asks Spark to fetch packages (no ``spark.jars.packages``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def is_local(master: str) -> bool:
    """Whether ``master`` runs everything in this machine's JVM.

    >>> is_local("local[2]"), is_local("local"), is_local("spark://head:7077"), is_local("yarn")
    (True, True, False, False)
    """
    return master == "local" or master.startswith("local[")


def submitted() -> bool:
    """Whether ``spark-submit`` started this Python process: it hands over its JVM through
    these variables, with the master and settings given on its command line."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def session(master: Optional[str], app: str, shuffle_partitions: int = 4):
    """A SparkSession for ``master``; see the module docstring for what local mode sets.
    ``None`` means spark-submit's master when spark-submit started the job, else local[2]."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app)
    if master is None and submitted():
        return _quiet(builder.getOrCreate())
    master = master or "local[2]"
    builder = builder.master(master)
    if is_local(master):
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
            .config("spark.ui.showConsoleProgress", "false")
        )
        # The Python workers would otherwise run the first `python3` on the PATH, which may
        # lack medvec; SparkContext reads this variable when it starts.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return _quiet(builder.getOrCreate())


def _quiet(spark):
    spark.sparkContext.setLogLevel(os.environ.get("MEDVEC_SPARK_LOG", "ERROR"))
    return spark


def ship(spark, *names: str) -> None:
    """Sends this folder's modules ``names`` (without ``.py``) to every executor. The functions
    a job hands to Spark are then pickled by reference (module and name) and imported there,
    so a module-level cache lives as long as the executor's Python worker, not one task."""
    for name in names:
        spark.sparkContext.addPyFile(str(HERE / f"{name}.py"))
