// The review page of a covered result: draw a box over a missed plate, click a box to remove
// it (click again to keep it), then save; the server re-renders the result from the original.
// A static file, not inline: the Content-Security-Policy runs no inline script without a nonce.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const svg = document.getElementById("review-boxes");
  const form = document.getElementById("review-form");
  if (!svg || !form) {
    return;
  }
  const NS = "http://www.w3.org/2000/svg";
  const width = Number(svg.dataset.width);
  const height = Number(svg.dataset.height);
  const regions = JSON.parse(document.getElementById("review-regions").textContent);
  const kept = new Set(regions.map((_, index) => index));
  const added = [];
  let drawing = null;

  const clamp = (value, high) => Math.min(Math.max(value, 0), high);
  const round = (value) => Math.round(value * 10) / 10;

  function point(event) {
    const frame = svg.getBoundingClientRect();
    return [
      clamp(((event.clientX - frame.left) / frame.width) * width, width),
      clamp(((event.clientY - frame.top) / frame.height) * height, height),
    ];
  }

  function ordered([x1, y1], [x2, y2]) {
    return [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)];
  }

  function shape([x1, y1, x2, y2], className, onClick) {
    const rect = document.createElementNS(NS, "rect");
    rect.setAttribute("x", x1);
    rect.setAttribute("y", y1);
    rect.setAttribute("width", x2 - x1);
    rect.setAttribute("height", y2 - y1);
    rect.setAttribute("class", className);
    rect.setAttribute("vector-effect", "non-scaling-stroke");
    if (onClick) {
      rect.addEventListener("pointerdown", (event) => event.stopPropagation());
      rect.addEventListener("click", onClick);
    }
    svg.appendChild(rect);
    return rect;
  }

  function draw() {
    svg.replaceChildren();
    regions.forEach((box, index) => {
      const toggle = () => {
        kept.has(index) ? kept.delete(index) : kept.add(index);
        draw();
      };
      shape(box, kept.has(index) ? "review-kept" : "review-removed", toggle);
    });
    added.forEach((box, index) => {
      shape(box, "review-added", () => {
        added.splice(index, 1);
        draw();
      });
    });
    const count = document.getElementById("review-count");
    if (count) {
      count.textContent = `${kept.size + added.length} box(es) will be covered`;
    }
  }

  svg.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    svg.setPointerCapture(event.pointerId);
    const start = point(event);
    drawing = { start, rect: shape([...start, ...start], "review-drawing") };
  });
  svg.addEventListener("pointermove", (event) => {
    if (!drawing) {
      return;
    }
    const [x1, y1, x2, y2] = ordered(drawing.start, point(event));
    drawing.rect.setAttribute("x", x1);
    drawing.rect.setAttribute("y", y1);
    drawing.rect.setAttribute("width", x2 - x1);
    drawing.rect.setAttribute("height", y2 - y1);
  });
  svg.addEventListener("pointerup", (event) => {
    if (!drawing) {
      return;
    }
    const box = ordered(drawing.start, point(event)).map(round);
    drawing = null;
    // A click is not a box: a few pixels at least each way.
    if (box[2] - box[0] >= 3 && box[3] - box[1] >= 3) {
      added.push(box);
    }
    draw();
  });

  form.addEventListener("submit", () => {
    const boxes = { keep: [...kept].sort((a, b) => a - b), add: added };
    document.getElementById("review-input").value = JSON.stringify(boxes);
  });
  draw();
});
