"""One small module per published dataset layout; importing this package registers them."""

from labelbridge.data.readers import (  # noqa: F401
    bdd100k,
    camvid,
    cityscapes,
    folder,
    goose,
    idd,
    idd_lite,
    kitti,
    mapillary,
    rellis3d,
    rugd,
    wilddash2,
    ycor,
)
