// explorer.js: the page's controls. Every control sets the code z; render() decodes z with
// decoder.js and redraws. The data (DATA) is what scratchvae/explore/content.py computed.
"use strict";

const DATA = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
const L = DATA.latent_dim, LAYERS_JS = prepareDecoder(DATA.layers);
const MEANS = fromBase64(DATA.means, Float32Array);                // (n, L) posterior means mu
const LOGVARS = DATA.logvars ? fromBase64(DATA.logvars, Float32Array) : null;  // (n, L), none for an AE
const N = MEANS.length / L;
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const row = (a, i) => Array.from(a.subarray(i * L, (i + 1) * L));  // row i of an (n, L) array

let z = row(MEANS, DATA.strip.index[0]);   // the code on show
let origin = z.slice();                    // z before the feature sliders moved it
let ends = [DATA.strip.index[0], DATA.strip.index[1 % DATA.strip.index.length]], nextEnd = 0;
let chosen = ends[0];                      // the held-out image whose posterior is drawn

// -- the pad's 2-D view: z itself for L = 2, else its first two principal coordinates ---------------
const PCA = DATA.pca;
function project(v) {                     // code (L) -> pad coordinates (2): z, or V (z - mean)
  if (!PCA) return [v[0], v.length > 1 ? v[1] : 0];
  return PCA.components.map((c) => c.reduce((s, ck, k) => s + ck * (v[k] - PCA.mean[k]), 0));
}
const POINTS = Array.from({ length: N }, (_, i) => project(row(MEANS, i)));
// the pad spans the points and the prior's +-3 sigma square, the same scale on both axes
const LO = [0, 1].map((a) => Math.min(-3, ...POINTS.map((p) => p[a])));
const HI = [0, 1].map((a) => Math.max(3, ...POINTS.map((p) => p[a])));
const CENTRE = [0, 1].map((a) => (LO[a] + HI[a]) / 2), HALF = 0.52 * Math.max(HI[0] - LO[0], HI[1] - LO[1]);
const pad = $("pad"), SIZE = pad.width, SCALE = SIZE / (2 * HALF);   // pixels per latent unit
const toPad = (p) => [SIZE / 2 + (p[0] - CENTRE[0]) * SCALE, SIZE / 2 - (p[1] - CENTRE[1]) * SCALE];  // y up
const fromPad = (px, py) => [CENTRE[0] + (px - SIZE / 2) / SCALE, CENTRE[1] - (py - SIZE / 2) / SCALE];

function moveOnPad(p) {                   // the pad sets z's coordinates in its plane, keeps the rest
  if (L === 1) return [p[0]];
  if (!PCA) return [p[0], p[1]];
  const now = project(z);
  return z.map((v, k) => v + PCA.components[0][k] * (p[0] - now[0]) + PCA.components[1][k] * (p[1] - now[1]));
}

// the posterior N(mu, diag sigma^2) of image i seen on the pad: for L = 2 an axis-aligned ellipse
// of radii sigma; above, the projection V diag(sigma^2) V^T (2 x 2) by its eigenvectors
function ellipse(i) {
  const s2 = row(LOGVARS, i).map(Math.exp);
  if (!PCA) return { radii: [Math.sqrt(s2[0]), Math.sqrt(s2[1] || 0)], angle: 0 };
  const [u, w] = PCA.components;
  const a = u.reduce((s, uk, k) => s + uk * uk * s2[k], 0), c = w.reduce((s, wk, k) => s + wk * wk * s2[k], 0);
  const b = u.reduce((s, uk, k) => s + uk * w[k] * s2[k], 0);
  const mid = (a + c) / 2, r = Math.sqrt(((a - c) / 2) ** 2 + b * b);
  return { radii: [Math.sqrt(mid + r), Math.sqrt(Math.max(mid - r, 0))], angle: 0.5 * Math.atan2(2 * b, a - c) };
}

function drawPad() {
  const g = pad.getContext("2d");
  g.clearRect(0, 0, SIZE, SIZE);
  g.strokeStyle = "#ddd";
  const [ox, oy] = toPad([0, 0]);
  g.beginPath(); g.moveTo(0, oy); g.lineTo(SIZE, oy); g.moveTo(ox, 0); g.lineTo(ox, SIZE); g.stroke();
  POINTS.forEach((p, i) => {
    const [x, y] = toPad(p);
    g.fillStyle = DATA.labels ? COLOURS[DATA.labels[i] % 10] : "#555";
    g.globalAlpha = 0.55;
    g.fillRect(x - 1.5, y - 1.5, 3, 3);
  });
  g.globalAlpha = 1;
  if (LOGVARS) {                            // the chosen image: its mean and one-sigma ellipse
    const [cx, cy] = toPad(POINTS[chosen]), e = ellipse(chosen);
    g.strokeStyle = "#000"; g.lineWidth = 2;
    g.beginPath(); g.ellipse(cx, cy, e.radii[0] * SCALE, e.radii[1] * SCALE, -e.angle, 0, 2 * Math.PI); g.stroke();
    g.beginPath(); g.arc(cx, cy, 3, 0, 2 * Math.PI); g.fillStyle = "#000"; g.fill();
  }
  const [x, y] = toPad(project(z));         // the code on show
  g.strokeStyle = "#d00"; g.lineWidth = 2;
  g.beginPath(); g.moveTo(x - 8, y); g.lineTo(x + 8, y); g.moveTo(x, y - 8); g.lineTo(x, y + 8); g.stroke();
  g.lineWidth = 1;
  const seen = DATA.labels ? [...new Set(DATA.labels)].sort((p, q) => p - q) : [];
  if (seen.length <= 10) {                  // a legend, while each label has a colour of its own
    seen.forEach((label, k) => {
      g.fillStyle = COLOURS[label % 10]; g.fillRect(6 + 22 * k, 6, 8, 8);
      g.fillStyle = "#333"; g.font = "10px sans-serif"; g.fillText(String(label), 16 + 22 * k, 14);
    });
  }
}

// -- images -----------------------------------------------------------------------------------------
// (C, H, W) values in [0, 1] onto a canvas: grey for one channel, RGB for three, else the channels' mean
function drawImage(canvas, shape, values) {
  const [C, H, W] = shape, tmp = document.createElement("canvas");
  tmp.width = W; tmp.height = H;
  const g = tmp.getContext("2d"), img = g.createImageData(W, H);
  for (let p = 0; p < H * W; p++) {
    const ch = (c) => Math.round(255 * Math.min(1, Math.max(0, values[c * H * W + p])));
    let rgb;
    if (C === 3) rgb = [ch(0), ch(1), ch(2)];
    else { let s = 0; for (let c = 0; c < C; c++) s += ch(c); rgb = Array(3).fill(Math.round(s / C)); }
    img.data.set([...rgb, 255], 4 * p);
  }
  g.putImageData(img, 0, 0);
  const out = canvas.getContext("2d");
  out.imageSmoothingEnabled = false;
  out.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

const fmt = (v) => v.map((x) => x.toFixed(2)).join(", ");
const short = (v) => (v.length <= 8 ? fmt(v) : fmt(v.slice(0, 8)) + ", ... (" + v.length + " values)");

function render() {
  const start = performance.now();
  const image = decode(LAYERS_JS, z);
  const ms = performance.now() - start;
  drawImage($("decoded"), image.shape, image.data);
  drawPad();
  $("zinfo").textContent = "z = [" + short(z) + "]\ndecoded in " + ms.toFixed(1) + " ms";
  const label = DATA.labels ? " (label " + DATA.labels[chosen] + ")" : "";
  $("posterior").textContent = LOGVARS
    ? "chosen: held-out image " + chosen + label + "\nmu    = [" + short(row(MEANS, chosen)) + "]\nsigma = [" +
      short(row(LOGVARS, chosen).map((v) => Math.exp(v / 2))) + "]"
    : "an autoencoder: no posterior to draw, and N(0, I) is not what its codes follow";
  z.forEach((v, d) => { const s = $("dim" + d); s.value = v; s.nextSibling.textContent = v.toFixed(2); });
  return image;
}

// every control but the feature sliders sets a new origin and puts the feature sliders back to 0
function setZ(v) {
  z = v.slice(); origin = z.slice();
  document.querySelectorAll("#features input").forEach((s) => { s.value = 0; s.nextSibling.textContent = "0.00"; });
  return render();
}

// -- the controls -------------------------------------------------------------------------------------
let pointer = null;                        // the latest pointer position, decoded once per frame
pad.addEventListener("mousemove", (e) => {
  const r = pad.getBoundingClientRect();
  if (pointer === null) requestAnimationFrame(() => { setZ(moveOnPad(fromPad(...pointer))); pointer = null; });
  pointer = [e.clientX - r.left, e.clientY - r.top];
});

for (let d = 0; d < L; d++) {              // a slider per latent dimension z_d
  const lab = document.createElement("label");
  lab.innerHTML = "z<sub>" + d + "</sub> <input type=range min=-4 max=4 step=0.01 id=dim" + d + "><span></span>";
  $("dims").appendChild(lab);
  $("dim" + d).addEventListener("input", (e) => { const v = z.slice(); v[d] = Number(e.target.value); setZ(v); });
}

function gaussian() {                      // N(0, 1) by Box-Muller
  return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
}
$("sample").addEventListener("click", () => setZ(Array.from({ length: L }, gaussian)));

function mixTo(alpha) {                    // lerp from mu_A to mu_B
  const a = row(MEANS, ends[0]), b = row(MEANS, ends[1]);
  showEnds(alpha);
  return setZ(a.map((v, k) => (1 - alpha) * v + alpha * b[k]));
}
$("mix").addEventListener("input", (e) => mixTo(Number(e.target.value)));

const STRIP = DATA.strip, THUMBS = fromBase64(STRIP.images, Uint8Array), [C, H, W] = DATA.image_shape;
function showEnds(alpha) {                  // red frame: end A, blue: end B; the slider at alpha
  document.querySelectorAll("#strip canvas").forEach((c, s) => {
    c.className = STRIP.index[s] === ends[0] ? "A" : STRIP.index[s] === ends[1] ? "B" : "";
  });
  $("mix").value = alpha;
  $("mixinfo").textContent = alpha.toFixed(2) + "  (A: image " + ends[0] + ", B: image " + ends[1] + ")";
}
function pick(s) {                          // a thumbnail: the next end, the chosen image, z = its mu
  ends[nextEnd] = STRIP.index[s]; nextEnd = 1 - nextEnd; chosen = STRIP.index[s];
  showEnds(0);
  return setZ(row(MEANS, chosen));
}
STRIP.index.forEach((i, s) => {
  const c = document.createElement("canvas");
  c.width = c.height = 42;
  c.title = "held-out image " + i + (DATA.labels ? ", label " + DATA.labels[i] : "");
  drawImage(c, DATA.image_shape, Array.from(THUMBS.subarray(s * C * H * W, (s + 1) * C * H * W), (v) => v / 255));
  c.addEventListener("click", () => pick(s));
  $("strip").appendChild(c);
});
showEnds(0);

// feature sliders: z = origin + sum_k alpha_k v_k (latent/features.py shift_codes)
function applyFeatures() {
  const alphas = [...document.querySelectorAll("#features input")].map((s) => Number(s.value));
  z = origin.map((v, k) => v + DATA.features.reduce((s, f, j) => s + alphas[j] * f.vector[k], 0));
  document.querySelectorAll("#features input").forEach((s) => { s.nextSibling.textContent = Number(s.value).toFixed(2); });
  return render();
}
DATA.features.forEach((f) => {
  const lab = document.createElement("label");
  lab.innerHTML = "label " + f.label + " <input type=range min=-3 max=3 step=0.05 value=0 id=feature" + f.label +
    "><span>0.00</span>";
  lab.title = "v = mean mu of label " + f.label + " (" + f.n_with + ") - mean mu of the rest (" + f.n_without + ")";
  $("features").appendChild(lab);
  $("feature" + f.label).addEventListener("input", applyFeatures);
});
$("featurenote").textContent = DATA.features.length
  ? "z + alpha v, v = mean mu of a label's held-out images - mean mu of the rest (all " + DATA.n_held_out +
    " held-out images; latent/features.py). Moving one keeps the code they started from."
  : "none: the dataset has no labels";

// -- what the page says about itself ------------------------------------------------------------------
$("decoded").width = $("decoded").height = W * Math.max(1, Math.floor(256 / W));   // whole pixels
$("about").textContent = "Decoded in this page by decoder.js: " +
  DATA.layers.map((l) => l.type).join(" > ") + ". " + N + " of the " + DATA.n_held_out + " held-out means shown.";
$("padtitle").textContent = PCA
  ? "held-out means on their first two principal directions (" + PCA.ratio.map((r) => (100 * r).toFixed(0) + "%").join(", ") + " of the variance)"
  : "held-out means mu (z_1 across, z_2 up)";
$("padnote").textContent = (PCA
  ? "Move the pointer: z moves in the plane of the two directions, its other coordinates stay."
  : "Move the pointer: z is the point under it.") + (LOGVARS ? " Black: the chosen image's mean and one-sigma ellipse." : "");

// -- test hooks: ?z=a,b,... | ?pick=s | ?mix=s,t,alpha | ?feature=label,alpha (applied in that order);
// the decoded image goes into <pre id="decoded-json"> for the tests (tests/test_explore_browser.py)
const query = new URLSearchParams(location.search);
let shown = setZ(z);
const nums = (key) => query.get(key).split(",").map(Number);
if (query.has("z")) shown = setZ(nums("z"));
if (query.has("pick")) shown = pick(nums("pick")[0]);
if (query.has("mix")) { const [s, t, alpha] = nums("mix"); pick(s); pick(t); shown = mixTo(alpha); }
if (query.has("feature")) {
  const [label, alpha] = nums("feature");
  $("feature" + label).value = alpha; shown = applyFeatures();
}
if ([...query.keys()].length) {
  $("decoded-json").textContent = JSON.stringify({ z: z, shape: shown.shape, pixels: Array.from(shown.data) });
}
