// explorer.js: the page's state and controls. Every control sets the code z on show, or the image at
// hand (drawn, or a held-out thumbnail) whose posterior, sample z and ELBO the page computes
// (elbo.js); render() decodes z and redraws. DATA is what scratchvae/explore/content.py and
// export.py computed. explorerState() hands the state to the tests (tests/test_explore.py).
"use strict";

const DATA = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
const L = DATA.latent_dim, MODEL = makeModel(DATA.model, L), [C, H, W] = DATA.image_shape;
const PRIOR = MODEL.prior || PRIORS.StandardNormal({}, L);   // an autoencoder's sample button still draws N(0, I)
const MEANS_FLAT = fromBase64(DATA.means, Float32Array);      // (n, L) posterior means mu, from NumPy
const MEANS = Array.from({ length: MEANS_FLAT.length / L }, (_, i) => Array.from(MEANS_FLAT.subarray(i * L, (i + 1) * L)));
const PAD = makePad($("pad"), MEANS, DATA.pca, DATA.labels);
const STRIP = DATA.strip, THUMBS = fromBase64(STRIP.images, Uint8Array);
const NLL_STEP = 5;                      // importance samples per step of the nll, between which the page answers

let z = MEANS[STRIP.index[0]];           // the code on show
let origin = z.slice();                  // z before the feature sliders moved it
let ends = [STRIP.index[0], STRIP.index[1 % STRIP.index.length]], nextEnd = 0, alpha = 0;
let at = null;                           // the image at hand: {source, x, q, eps, elbo, nll}
let backdrop = null, manifold = null;    // the decoded manifold (L = 2): on the pad while its toggle is on
let shown = null;                        // the decode of z on show
let sampled = null;                      // the last draw from the prior: {z, component, eps}

// -- images -----------------------------------------------------------------------------------------
// (C, H, W) values in [0, 1] onto a canvas: grey for one channel, RGB for three, else the channels' mean
function drawImage(canvas, shape, values) {
  const [c, h, w] = shape, tmp = document.createElement("canvas");
  tmp.width = w; tmp.height = h;
  const g = tmp.getContext("2d"), img = g.createImageData(w, h);
  for (let p = 0; p < h * w; p++) {
    const ch = (k) => Math.round(255 * Math.min(1, Math.max(0, values[k * h * w + p])));
    let rgb;
    if (c === 3) rgb = [ch(0), ch(1), ch(2)];
    else { let s = 0; for (let k = 0; k < c; k++) s += ch(k); rgb = Array(3).fill(Math.round(s / c)); }
    img.data.set([...rgb, 255], 4 * p);
  }
  g.putImageData(img, 0, 0);
  const out = canvas.getContext("2d");
  out.imageSmoothingEnabled = false;
  out.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}
const fmt = (v) => v.map((x) => x.toFixed(2)).join(", ");
const short = (v) => (v.length <= 8 ? fmt(v) : fmt(v.slice(0, 8)) + ", ... (" + v.length + " values)");
const nats = (v) => (v === null ? "-" : v.toFixed(2));

// -- the code on show ---------------------------------------------------------------------------------
function render() {
  const start = performance.now();
  shown = decodeMean(MODEL, z);
  const ms = performance.now() - start;
  drawImage($("decoded"), shown.shape, shown.data);
  PAD.draw({ z, backdrop, prior: L === 2 ? MODEL.prior : null, q: at && at.q.logvar ? { mu: at.q.mu, sigma: MODEL.posterior.sigma(at.q) } : null,
             zSample: at && MODEL.posterior ? at.elbo.z : null });
  $("zinfo").textContent = "z = [" + short(z) + "]\ndecoded in " + ms.toFixed(1) + " ms";
  z.forEach((v, d) => { const s = $("dim" + d); s.value = v; s.nextSibling.textContent = v.toFixed(2); });
}

// every control but the feature sliders sets a new origin and puts the feature sliders back to 0
function setZ(v) {
  z = v.slice(); origin = z.slice();
  document.querySelectorAll("#features input").forEach((s) => { s.value = 0; s.nextSibling.textContent = "0.00"; });
  render();
}

// -- the image at hand: its posterior, a sample z, the ELBO's terms, the nll ------------------------
function setImage(x, source, final = true) {
  const q = encodeImage(MODEL, x);
  at = { source, x, q, eps: null, elbo: null, nll: null };
  drawImage($("xat"), x.shape, x.data);
  drawImage($("xmean"), x.shape, decodeMean(MODEL, q.mu).data);
  newEps(final);                          // while a stroke goes on, no nll yet
  setZ(q.mu);                             // the code on show: the posterior mean
}

function newEps(withNll = true) {         // z = mu + sigma eps with a new eps (and a new nll estimate)
  at.eps = MODEL.posterior ? MODEL.posterior.sampleEps() : null;
  at.elbo = elboTerms(MODEL, at.x, at.q, at.eps);
  drawImage($("xsample"), at.x.shape, MODEL.likelihood ? MODEL.likelihood.mean(at.elbo.out.data) : at.elbo.out.data);
  if (withNll) startNll();
  showElbo();
}

function startNll() {                     // K samples (the select; 100 as evaluate's default), NLL_STEP at a time
  if (!MODEL.posterior || !MODEL.likelihood) return;
  const est = at.nll = nllEstimate(MODEL, at.x, at.q, Number($("k").value));
  const run = () => { if (at && at.nll === est && !est.step(NLL_STEP)) setTimeout(run, 0); showElbo(); };
  setTimeout(run, 0);
}

function showElbo() {
  const e = at.elbo, label = at.source.label === undefined ? "" : ", label " + at.source.label;
  $("atsource").textContent = at.source.kind === "drawn" ? "your drawing (centred and scaled as MNIST's digits: see under the canvas)"
    : at.source.kind === "pseudo-input" ? "pseudo-input u_" + at.source.index + " of the VampPrior: its posterior is the prior's component " + at.source.index
    : "held-out image " + at.source.index + label;
  const nll = at.nll ? (at.nll.done ? nats(at.nll.value) : at.nll.logW.length + " of " + at.nll.K + " samples...") : "-";
  $("elbo").textContent = !MODEL.posterior
    ? "an autoencoder: its code is the encoder's output, with no posterior, so no KL, ELBO or nll\nrecon -log p(x|z) = " + nats(e.recon) + " nats"
    : "mu    = [" + short(at.q.mu) + "]\nsigma = [" + short(MODEL.posterior.sigma(at.q)) + "]\neps   = [" + short(at.eps) +
      "]\nz = mu + sigma eps: the green circle on the pad\n\n" +
      "recon  -log p(x|z)       " + nats(e.recon).padStart(9) + " nats\n" +
      (e.klPerDim ? "KL     KL(q(z|x) || p(z)) " + nats(e.kl).padStart(8)
        : "KL     log q - log p at z" + nats(e.kl).padStart(9)) + " nats\n" +
      "-ELBO  recon + KL        " + nats(e.total).padStart(9) + " nats\n" +
      "nll    -log p(x), K = " + $("k").value + "  " + nll.padStart(8) + (at.nll && at.nll.done ? " nats" : "") +
      (MODEL.likelihood ? "" : "\n(the loss is no log-likelihood: no recon or nll)") +
      (e.klPerDim ? "" : "\n(a learned prior has no closed-form KL: this is the one-sample estimate at the green z, as " +
        "training and evaluate compute it; new eps moves it, it can be negative, its mean over eps is the KL)") +
      (greyUnderBernoulli(at.x) ? "\n(grey levels under a Bernoulli: losses, not -log p)" : "");
  drawKlBars(e.klPerDim);
}

// evaluate's note: a Bernoulli gives no likelihood to grey levels, so recon and nll are then losses only
const greyUnderBernoulli = (x) => MODEL.likelihood && MODEL.likelihood.binaryOnly && !x.data.every((v) => v === 0 || v === 1);

function drawKlBars(kl) {                 // KL(q(z_d|x) || p(z_d)) of each latent dimension d
  const canvas = $("klbars"), g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  if (!kl) return;
  const top = Math.max(...kl, 1e-9), bar = (w - 40) / kl.length;
  g.fillStyle = "#333"; g.font = "10px sans-serif";
  g.fillText(top.toFixed(2) + " nats", 0, 10); g.fillText("0", 0, h - 14);
  kl.forEach((v, d) => {
    const bh = (h - 30) * v / top;
    g.fillStyle = "#1f77b4"; g.fillRect(40 + d * bar + 0.5, h - 16 - bh, Math.max(1, bar - 1), bh);
  });
  g.fillStyle = "#333";
  const every = Math.ceil(kl.length / 8);           // at most 8 labels, none past the right edge
  for (let d = 0; d + every <= kl.length || d === 0; d += every) g.fillText("z" + d, 40 + d * bar, h - 3);
}

// -- the controls -------------------------------------------------------------------------------------
let pointer = null;                       // the pad: the latest pointer position, decoded once per frame
$("pad").addEventListener("pointermove", (e) => {
  const r = $("pad").getBoundingClientRect();
  if (pointer === null) requestAnimationFrame(() => { setZ(PAD.moveOnPad(z, PAD.fromPad(...pointer))); pointer = null; });
  pointer = [e.clientX - r.left, e.clientY - r.top];
});

for (let d = 0; d < L; d++) {             // a slider per latent dimension z_d
  const lab = document.createElement("label");
  lab.innerHTML = "z<sub>" + d + "</sub> <input type=range min=-4 max=4 step=0.01 id=dim" + d + "><span></span>";
  $("dims").appendChild(lab);
  $("dim" + d).addEventListener("input", (e) => { const v = z.slice(); v[d] = Number(e.target.value); setZ(v); });
}
$("sample").textContent = "sample z ~ " + PRIOR.name;
$("sample").addEventListener("click", () => { sampled = PRIOR.sample(); setZ(sampled.z); });
$("neweps").addEventListener("click", () => { newEps(); render(); });
$("k").addEventListener("change", () => { if (at) { startNll(); showElbo(); } });

const DRAWING = makeDrawing($("draw"), (final) => {
  const x = DRAWING.image(DATA.image_shape);
  if (x) setImage(x, { kind: "drawn" }, final);
});
$("clear").addEventListener("click", () => DRAWING.clear());

function mixTo(a) {                       // lerp from mu_A to mu_B
  alpha = a;
  showEnds();
  setZ(MEANS[ends[0]].map((v, k) => (1 - a) * v + a * MEANS[ends[1]][k]));
}
$("mix").addEventListener("input", (e) => mixTo(Number(e.target.value)));

function showEnds() {                     // red frame: end A, blue: end B; the slider at alpha
  document.querySelectorAll("#strip canvas").forEach((c, s) => {
    c.className = STRIP.index[s] === ends[0] ? "A" : STRIP.index[s] === ends[1] ? "B" : "";
  });
  $("mix").value = alpha;
  $("mixinfo").textContent = alpha.toFixed(2) + "  (A: image " + ends[0] + ", B: image " + ends[1] + ")";
}
function thumb(s) {                       // thumbnail s as an image {shape, data} in [0, 1]
  return { shape: DATA.image_shape, data: Float64Array.from(THUMBS.subarray(s * C * H * W, (s + 1) * C * H * W), (v) => v / 255) };
}
function pick(s) {                        // a thumbnail: the next end, and the image at hand (encoded here)
  ends[nextEnd] = STRIP.index[s]; nextEnd = 1 - nextEnd; alpha = 0;
  showEnds();
  setImage(thumb(s), { kind: "held-out", index: STRIP.index[s], label: DATA.labels ? DATA.labels[STRIP.index[s]] : undefined });
}
STRIP.index.forEach((i, s) => {
  const c = document.createElement("canvas");
  c.width = c.height = 42;
  c.title = "held-out image " + i + (DATA.labels ? ", label " + DATA.labels[i] : "") + ": click to encode it";
  drawImage(c, DATA.image_shape, thumb(s).data);
  c.addEventListener("click", () => pick(s));
  $("strip").appendChild(c);
});

// a VampPrior's pseudo-inputs u_m (sigmoid of its learned logits): p(z) = (1/M) sum_m q(z | u_m); a click encodes one
const PSEUDO = DATA.model.prior && DATA.model.prior.pseudo_inputs;
if (PSEUDO) {
  const u = fromBase64(PSEUDO, Float32Array), size = C * H * W;
  const image = (m) => ({ shape: DATA.image_shape, data: Float64Array.from(u.subarray(m * size, (m + 1) * size)) });
  for (let m = 0; m < PSEUDO.shape[0]; m++) {
    const c = document.createElement("canvas");
    c.width = c.height = 28;
    c.title = "pseudo-input u_" + m + ": click to encode it";
    drawImage(c, DATA.image_shape, image(m).data);
    c.addEventListener("click", () => setImage(image(m), { kind: "pseudo-input", index: m }));
    $("pseudo").appendChild(c);
  }
  $("pseudonote").textContent = "The VampPrior's " + PSEUDO.shape[0] + " learned pseudo-inputs u_m: the prior is the mixture " +
    "of their posteriors, (1/M) sum_m q(z | u_m), made from the encoder when the page was written. Click one to encode it.";
}

// feature sliders: z = origin + sum_k alpha_k v_k (latent/features.py shift_codes)
function applyFeatures() {
  const alphas = [...document.querySelectorAll("#features input")].map((s) => Number(s.value));
  z = origin.map((v, k) => v + DATA.features.reduce((s, f, j) => s + alphas[j] * f.vector[k], 0));
  document.querySelectorAll("#features input").forEach((s) => { s.nextSibling.textContent = Number(s.value).toFixed(2); });
  render();
}
DATA.features.forEach((f) => {
  const lab = document.createElement("label");
  lab.innerHTML = "label " + f.label + " <input type=range min=-3 max=3 step=0.05 value=0 id=feature" + f.label + "><span>0.00</span>";
  lab.title = "v = mean mu of label " + f.label + " (" + f.n_with + ") - mean mu of the rest (" + f.n_without + ")";
  $("features").appendChild(lab);
  $("feature" + f.label).addEventListener("input", applyFeatures);
});

// the decoded manifold behind the pad (L = 2): tiles decoded once, when first switched on
$("backdrop").addEventListener("change", (e) => {
  if (e.target.checked && !manifold) manifold = PAD.manifold((v) => decodeMean(MODEL, v), DATA.image_shape, 16);
  backdrop = e.target.checked ? manifold : null;
  render();
});

// -- what the page says about itself ------------------------------------------------------------------
const names = (layers) => layers.map((l) => l.type).join(" > ");
$("about").textContent = "Run in this page by layers.js: encoder " + names(DATA.model.encoder) + "; decoder " +
  names(DATA.model.decoder) + (MODEL.likelihood ? "; likelihood " + MODEL.likelihood.name : "") +
  (MODEL.posterior ? "; posterior " + MODEL.posterior.name + "; prior " + MODEL.prior.name : "; an autoencoder") +
  ". " + MEANS.length + " of the " + DATA.n_held_out + " held-out means shown.";
$("padtitle").textContent = DATA.pca
  ? "held-out means on their first two principal directions (" + DATA.pca.ratio.map((r) => (100 * r).toFixed(0) + "%").join(", ") + " of the variance)"
  : "held-out means mu (z_1 across" + (L > 1 ? ", z_2 up)" : ")");
$("padnote").textContent = (DATA.pca
  ? "Move the pointer: z moves in the plane of the two directions, its other coordinates stay."
  : "Move the pointer: z is the point under it." + (L === 2 && MODEL.prior ? (MODEL.prior.klPerDim
    ? " Grey: the prior's 1-, 2- and 3-sigma contours."
    : " Grey: contours of the learned prior's log-density, 0.5, 2 and 4.5 nats below its highest value on the pad.") : "")) +
  (MODEL.posterior ? " Black: the image at hand's mean and one-sigma ellipse; green: its sample z." : "");
$("drawnote").textContent = "Draw with a mouse, a pen or a finger. The page makes the drawing a " + H + " x " + W +
  " image the way MNIST's digits were made: scaled to fit a " + Math.round(BOX * Math.min(H, W)) + " x " +
  Math.round(BOX * Math.min(H, W)) + " box (aspect kept), drawn with a " + (PEN_PX * Math.min(H, W) / 28).toFixed(1) +
  "-pixel pen, anti-aliased, its centre of mass at the centre of the field (drawing.js).";
$("featurenote").textContent = DATA.features.length
  ? "z + alpha v, v = mean mu of a label's held-out images - mean mu of the rest (all " + DATA.n_held_out +
    " held-out images; latent/features.py). Moving one keeps the code they started from."
  : "none: the dataset has no labels";
$("backdroplabel").style.display = L === 2 ? "" : "none";
$("klnote").textContent = !MODEL.prior ? "" : MODEL.prior.klPerDim ? "KL of each latent dimension, KL(q(z_d|x) || p(z_d)):"
  : "no KL bars: the KL from a learned prior does not split over the latent dimensions";
$("klbars").style.display = MODEL.prior && !MODEL.prior.klPerDim ? "none" : "";
for (const id of ["decoded", "xat", "xmean", "xsample"]) {    // whole screen pixels per image pixel
  const c = $(id), k = Math.max(1, Math.floor(c.width / W));
  c.width = W * k; c.height = H * k;
}
showEnds();
pick(0);

// The state, for the tests: plain arrays and numbers (JSON)
function explorerState() {
  const arr = (v) => (v ? Array.from(v) : null);
  return {
    z, shown: { shape: shown.shape, pixels: arr(shown.data) }, alpha, ends, sampled,
    features: [...document.querySelectorAll("#features input")].map((s) => Number(s.value)),
    at: at && {
      source: at.source, x: { shape: at.x.shape, pixels: arr(at.x.data) }, mu: at.q.mu, logvar: at.q.logvar, eps: at.eps,
      z: at.elbo.z, recon: at.elbo.recon, kl: at.elbo.kl, klPerDim: at.elbo.klPerDim, total: at.elbo.total,
      nll: at.nll && { K: at.nll.K, eps: at.nll.eps, logW: at.nll.logW, value: at.nll.value, done: at.nll.done },
    },
    backdrop: backdrop && { n: backdrop.n, zs: backdrop.zs, images: backdrop.images },
    drawing: { strokes: DRAWING.strokes.length, pointerTypes: [...DRAWING.pointerTypes] },
  };
}
