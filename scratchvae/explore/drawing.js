// drawing.js: the drawing canvas (mouse, pen and touch, through pointer events) and the image its
// strokes make, centred and scaled the way MNIST's digits were (LeCun et al.): the strokes are
// scaled, aspect kept, to fit a 20 x 20 box (20/28 of the image's side), drawn with a round pen
// PEN_PX pixels wide, anti-aliased (a pixel's grey level is the share of it the pen covers), and
// moved so that their centre of mass is the centre of the field: pixel (14, 14) of 28 x 28, where
// MNIST's training digits have theirs on average (row 13.997, column 14.006 over the first 20,000;
// each within +-0.3). The pen is drawn from the strokes as vectors, so it is PEN_PX wide however
// large the strokes were drawn.
"use strict";

const BOX = 20 / 28, PEN_PX = 2.4, SUPERSAMPLE = 8;   // PEN_PX: MNIST's strokes are 2 to 3 pixels wide

// The strokes (lists of [x, y] in canvas pixels) as an image {shape: [C, H, W], data} in [0, 1]: one
// channel drawn, repeated over C. Strokes spanning less than minSpan (a dot) are scaled as if they
// spanned minSpan. Empty strokes give null.
function strokesToImage(strokes, shape, minSpan) {
  const [C, H, W] = shape, side = Math.min(H, W), pen = PEN_PX * side / 28;
  const points = strokes.flat();
  if (!points.length) return null;
  const lo = [0, 1].map((a) => Math.min(...points.map((p) => p[a])));
  const hi = [0, 1].map((a) => Math.max(...points.map((p) => p[a])));
  // the longer side of the strokes' box, plus the pen, fills BOX * side
  const scale = (BOX * side - pen) / Math.max(hi[0] - lo[0], hi[1] - lo[1], minSpan);
  const mid = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2];
  // drawn with the box centred, then moved by the centre of mass's distance from the field's centre, twice
  // (the ink is not exactly linear in the shift at the field's edges and the pen's ramps; the second move is small)
  let shift = [0, 0], image = renderStrokes(strokes, shape, pen, scale, mid, shift);
  for (let round = 0; round < 2; round++) {
    const com = centreOfMass(image, H, W);
    shift = [shift[0] + W / 2 - com[0], shift[1] + H / 2 - com[1]];
    image = renderStrokes(strokes, shape, pen, scale, mid, shift);
  }
  const data = new Float64Array(C * H * W);
  for (let c = 0; c < C; c++) data.set(image, c * H * W);
  return { shape: [C, H, W], data };
}

// One channel (H * W values in [0, 1]): the strokes mapped to (p - mid) * scale + the field's centre +
// shift, in index coordinates (pixel (i, j) centred at (j, i)), drawn with a round pen of diameter
// pen. Each pixel's value is the mean of its SUPERSAMPLE x SUPERSAMPLE sample points' ink: 1 within
// pen / 2 of a stroke, 0 beyond, and a linear ramp over the sample spacing across the pen's edge, so
// the ink moves smoothly with the strokes (computed here: the canvas's anti-aliasing moves in steps)
function renderStrokes(strokes, [, H, W], pen, scale, mid, shift) {
  const R = SUPERSAMPLE, r = pen / 2 + 0.5 / R, ink = new Float64Array(H * R * W * R);
  const to = (p) => [(p[0] - mid[0]) * scale + W / 2 + shift[0], (p[1] - mid[1]) * scale + H / 2 + shift[1]];
  const sample = (s) => (s + 0.5) / R - 0.5;                   // sample index -> index coordinate
  const first = (v) => Math.ceil((v + 0.5) * R - 0.5), last = (v) => Math.floor((v + 0.5) * R - 0.5);
  for (const stroke of strokes) {
    const pts = stroke.map(to);
    for (let k = 0; k < Math.max(1, pts.length - 1); k++) {      // each segment; a dot is one of length 0
      const a = pts[k], b = pts[Math.min(k + 1, pts.length - 1)];
      const x0 = Math.max(0, first(Math.min(a[0], b[0]) - r)), x1 = Math.min(W * R - 1, last(Math.max(a[0], b[0]) + r));
      const y0 = Math.max(0, first(Math.min(a[1], b[1]) - r)), y1 = Math.min(H * R - 1, last(Math.max(a[1], b[1]) + r));
      for (let sy = y0; sy <= y1; sy++) {
        for (let sx = x0; sx <= x1; sx++) {
          const v = Math.min(1, (r - distanceToSegment(sample(sx), sample(sy), a, b)) * R);
          if (v > ink[sy * W * R + sx]) ink[sy * W * R + sx] = v;
        }
      }
    }
  }
  const out = new Float64Array(H * W);
  ink.forEach((v, s) => { if (v) out[Math.floor(s / (W * R * R)) * W + Math.floor((s % (W * R)) / R)] += v / (R * R); });
  return out;
}

function distanceToSegment(x, y, a, b) {
  const dx = b[0] - a[0], dy = b[1] - a[1], len2 = dx * dx + dy * dy;
  const t = len2 > 0 ? Math.max(0, Math.min(1, ((x - a[0]) * dx + (y - a[1]) * dy) / len2)) : 0;
  return Math.hypot(x - a[0] - t * dx, y - a[1] - t * dy);
}

// [x, y] of the centre of mass in index coordinates (pixel (i, j) at (j, i)), null for an empty image
function centreOfMass(values, H, W) {
  let m = 0, x = 0, y = 0;
  values.forEach((v, k) => { m += v; x += v * (k % W); y += v * Math.floor(k / W); });
  return m > 0 ? [x / m, y / m] : null;
}

// The drawing canvas: strokes by pointer (mouse, pen or touch); onStroke(final) after every move
// (final = false, at most once a frame) and when a stroke ends (final = true)
function makeDrawing(canvas, onStroke) {
  const strokes = [], pointerTypes = new Set();   // the pointers that drew: mouse, pen, touch
  let current = null, pending = false;
  const g = canvas.getContext("2d");
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  function redraw() {
    g.fillStyle = "#000"; g.fillRect(0, 0, canvas.width, canvas.height);
    g.strokeStyle = g.fillStyle = "#fff"; g.lineWidth = canvas.width / 16; g.lineCap = g.lineJoin = "round";
    for (const s of strokes) {
      g.beginPath(); g.moveTo(...s[0]);
      for (const p of s) g.lineTo(...p);
      if (s.length === 1) g.lineTo(s[0][0] + 0.01, s[0][1]);   // a dot: a zero-length stroke shows its round cap
      g.stroke();
    }
  }
  canvas.addEventListener("pointerdown", (e) => {
    canvas.setPointerCapture(e.pointerId);
    pointerTypes.add(e.pointerType);
    current = [at(e)]; strokes.push(current); redraw();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!current) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) current.push(at(ev));
    redraw();
    if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; if (current) onStroke(false); }); }
  });
  const end = () => { if (current) { current = null; onStroke(true); } };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  redraw();
  return {
    strokes, pointerTypes,
    clear() { strokes.length = 0; current = null; pointerTypes.clear(); redraw(); },
    image: (shape) => strokesToImage(strokes, shape, canvas.width / 8),
  };
}
