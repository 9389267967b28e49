"""The image library: upload, storage, signed links, EXIF, thumbnails and the pipeline."""
