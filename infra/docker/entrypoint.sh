#!/bin/sh
# Entry point of the consumer image: write the KCL properties from the
# environment (the same Settings the code reads), then replace this shell
# with the KCL MultiLangDaemon, which spawns the Python record processor.
#
# The properties go to /tmp because the task's root file system is read-only.
set -eu

properties="${TMPDIR:-/tmp}/kcl.properties"

chroma-journal kcl-properties --out "$properties"

jars="$(python -c 'import amazon_kclpy, pathlib; print(pathlib.Path(amazon_kclpy.__file__).parent / "jars")')"

# The JVM shares the task's memory with one Python processor per shard and
# ChromaDB; cap its heap at a quarter of the container's memory.
exec java -XX:MaxRAMPercentage=25 \
    -cp "${jars}/*:$(dirname "$properties")" \
    software.amazon.kinesis.multilang.MultiLangDaemon \
    --properties-file "$properties"
