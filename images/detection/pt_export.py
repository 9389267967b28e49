"""Export an operator's .pt model to ONNX beside it: `python -I pt_export.py MODEL.pt`.

Run only by `manage.py register_model`, as a short-lived child process with a bare environment:
loading a .pt unpickles it, which runs any code it names, so this never happens in the web or
worker processes. Deliberately imports nothing of the project (and no Django).
"""

import os
import sys


def main(source: str) -> None:
    # Never pip-install or reach a hub: the machine may be offline, and the file is all we use.
    os.environ["YOLO_OFFLINE"] = "true"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    try:
        from ultralytics import YOLO
    except ImportError:
        sys.exit("ultralytics is not installed: run `make install-yolo` (the [yolo] extra).")
    # simplify needs onnxslim, which ultralytics would otherwise try to pip-install.
    print(YOLO(source).export(format="onnx", simplify=False, dynamic=False))


if __name__ == "__main__":
    main(sys.argv[1])
