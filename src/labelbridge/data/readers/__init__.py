"""One small module per published dataset layout; importing this package registers them."""

from labelbridge.data.readers import camvid  # noqa: F401
