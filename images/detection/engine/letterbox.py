"""The photo as the network sees it: resized into a square (or a stride's multiple), padded grey."""

from dataclasses import dataclass

import cv2
import numpy as np

LETTERBOX_FILL = 114  # ultralytics' grey: the model was trained with this padding


@dataclass(frozen=True)
class Letterbox:
    ratio: float
    pad_x: float
    pad_y: float

    def to_original(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (xs - self.pad_x) / self.ratio, (ys - self.pad_y) / self.ratio


def letterbox(
    rgb: np.ndarray, size: int, stride: int | None = None
) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad to size x size, exactly as ultralytics does.

    With a stride, pad only to the next multiple of it instead (ultralytics' `auto` letterbox,
    the rectangle it feeds PyTorch models): a 16:9 photo becomes 640x384, not 640x640.
    """
    height, width = rgb.shape[:2]
    ratio = min(size / height, size / width)
    new_w, new_h = round(width * ratio), round(height * ratio)
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    if stride is not None:
        pad_x, pad_y = (size - new_w) % stride / 2, (size - new_h) % stride / 2
    if (new_w, new_h) != (width, height):
        rgb = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(pad_y - 0.1), round(pad_y + 0.1)
    left, right = round(pad_x - 0.1), round(pad_x + 0.1)
    padded = cv2.copyMakeBorder(
        rgb, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(LETTERBOX_FILL,) * 3
    )
    return padded, Letterbox(ratio, left, top)


def to_tensor(padded: np.ndarray, dtype: np.dtype) -> np.ndarray:
    chw = padded.transpose(2, 0, 1)[np.newaxis].astype(np.float32) / 255.0
    return np.ascontiguousarray(chw, dtype=dtype)
