"""covr-datagen's Apache Beam pipeline: stages, readers, miners, media, CLI commands."""

import logging


class _DropBeamOptionalGcpNotice(logging.Filter):
    """Beam warns at import that optional GCP client libraries are absent; they are not used."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_DropBeamOptionalGcpNotice())
