"""The processor executable the daemon test starts while the CLI lacks it.

Once ``chroma-journal kcl-processor`` exists and ``Settings`` has the
``KCL_*`` fields, the test uses the CLI and this file can go. Until then it
adds the two fields the processor reads and runs :func:`run_processor`.
"""

from __future__ import annotations

from chroma_journal.logs import configure_logging
from chroma_journal.settings import Settings
from pipeline.kcl_main import run_processor


class _WithKCLFields(Settings):
    kcl_worker_id: str | None = None
    kcl_idle_catch_up_seconds: float = 30.0


def main() -> None:
    settings = _WithKCLFields()
    configure_logging(
        fmt=settings.log_format, level=settings.log_level, file=settings.log_file
    )
    run_processor(settings)


if __name__ == "__main__":
    main()
