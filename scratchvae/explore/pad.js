// pad.js: the latent pad, a 2-D view of the codes: z itself for L = 2 (L = 1: z across), else its first two
// principal coordinates. It draws the held-out means, the prior's contours and the decoded manifold
// (L = 2), the image at hand's posterior (mean and one-sigma ellipse) and sample z, and the code on show.
"use strict";

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function makePad(canvas, means, pca, labels) {
  const L = means[0].length, SIZE = canvas.width;
  // code (L) -> pad coordinates (2): z, or V (z - mean)
  const project = (v) => (pca ? pca.components.map((c) => c.reduce((s, ck, k) => s + ck * (v[k] - pca.mean[k]), 0))
    : [v[0], L > 1 ? v[1] : 0]);
  const points = means.map(project);
  // the pad spans the points and the prior's +-3 sigma square, the same scale on both axes
  const lo = [0, 1].map((a) => Math.min(-3, ...points.map((p) => p[a])));
  const hi = [0, 1].map((a) => Math.max(3, ...points.map((p) => p[a])));
  const centre = [0, 1].map((a) => (lo[a] + hi[a]) / 2), half = 0.52 * Math.max(hi[0] - lo[0], hi[1] - lo[1]);
  const scale = SIZE / (2 * half);           // pixels per latent unit
  const toPad = (p) => [SIZE / 2 + (p[0] - centre[0]) * scale, SIZE / 2 - (p[1] - centre[1]) * scale];  // y up
  const fromPad = (px, py) => [centre[0] + (px - SIZE / 2) / scale, centre[1] - (py - SIZE / 2) / scale];

  // the pad sets z's coordinates in its plane and keeps the rest
  function moveOnPad(z, p) {
    if (L === 1) return [p[0]];
    if (!pca) return [p[0], p[1]];
    const now = project(z);
    return z.map((v, k) => v + pca.components[0][k] * (p[0] - now[0]) + pca.components[1][k] * (p[1] - now[1]));
  }

  // N(mu, diag sigma^2) seen on the pad: for L = 2 an axis-aligned ellipse of radii sigma; above, the
  // projection V diag(sigma^2) V^T (2 x 2) by its eigenvectors
  function ellipse(sigma) {
    const s2 = sigma.map((s) => s * s);
    if (!pca) return { radii: [sigma[0], sigma[1] || 0], angle: 0 };
    const [u, w] = pca.components;
    const a = u.reduce((s, uk, k) => s + uk * uk * s2[k], 0), c = w.reduce((s, wk, k) => s + wk * wk * s2[k], 0);
    const b = u.reduce((s, uk, k) => s + uk * w[k] * s2[k], 0);
    const mid = (a + c) / 2, r = Math.sqrt(((a - c) / 2) ** 2 + b * b);
    return { radii: [Math.sqrt(mid + r), Math.sqrt(Math.max(mid - r, 0))], angle: 0.5 * Math.atan2(2 * b, a - c) };
  }

  // L = 2: the decoded manifold, n x n tiles, each the decode of the z at its centre, dark ink on white
  function manifold(decode, shape, n) {
    const [C, H, W] = shape, tile = SIZE / n, zs = [], images = [];
    const out = document.createElement("canvas");
    out.width = out.height = SIZE;
    const g = out.getContext("2d"), one = g.createImageData(W, H), tmp = document.createElement("canvas");
    tmp.width = W; tmp.height = H;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const z = fromPad((j + 0.5) * tile, (i + 0.5) * tile), image = decode(z).data;
        for (let p = 0; p < H * W; p++) {
          let v = 0;
          for (let c = 0; c < C; c++) v += image[c * H * W + p] / C;
          const grey = Math.round(255 * (1 - 0.75 * Math.min(1, Math.max(0, v))));
          one.data.set([grey, grey, grey, 255], 4 * p);
        }
        tmp.getContext("2d").putImageData(one, 0, 0);
        g.drawImage(tmp, j * tile, i * tile, tile, tile);
        zs.push(z); images.push(Array.from(image));
      }
    }
    return { canvas: out, n, zs, images };
  }

  // L = 2: contours of the prior's log density at its highest value on the grid minus 0.5, 2 and 4.5
  // (for N(0, I) the 1-, 2- and 3-sigma circles; for a mixture, whatever shape it has), by marching
  // squares on an (n + 1) x (n + 1) grid of the pad: {top, levels, segments [[x0, y0, x1, y1, level]]}
  function contourLines(logDensity, n = 80) {
    const step = SIZE / n, f = [];
    for (let i = 0; i <= n; i++) for (let j = 0; j <= n; j++) f.push(logDensity(fromPad(j * step, i * step)));
    const top = Math.max(...f), at = (i, j) => f[i * (n + 1) + j], levels = [0.5, 2, 4.5].map((d) => top - d);
    const segments = [];
    levels.forEach((level, l) => {
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          // where the level crosses the square's four edges, by linear interpolation; joined in pairs
          const corners = [[i, j], [i, j + 1], [i + 1, j + 1], [i + 1, j]], cross = [];
          for (let e = 0; e < 4; e++) {
            const [a, b] = [corners[e], corners[(e + 1) % 4]], fa = at(...a), fb = at(...b);
            if ((fa > level) !== (fb > level)) {
              const t = (level - fa) / (fb - fa);
              cross.push([(a[1] + t * (b[1] - a[1])) * step, (a[0] + t * (b[0] - a[0])) * step]);
            }
          }
          for (let k = 0; k + 1 < cross.length; k += 2) segments.push([...cross[k], ...cross[k + 1], l]);
        }
      }
    });
    return { top, levels, segments };
  }

  let drawnPrior = null, lines = null;       // the contours, computed once per prior
  function contours(g, prior) {
    if (prior !== drawnPrior) { lines = contourLines(prior.logDensity); drawnPrior = prior; }
    g.strokeStyle = "#999"; g.lineWidth = 1; g.beginPath();
    for (const [x0, y0, x1, y1] of lines.segments) { g.moveTo(x0, y0); g.lineTo(x1, y1); }
    g.stroke();
  }

  // scene: {z, backdrop (a manifold or null), prior (or null), q: {mu, sigma} or null, zSample or null}
  function draw(scene) {
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, SIZE, SIZE);
    if (scene.backdrop) g.drawImage(scene.backdrop.canvas, 0, 0);
    g.strokeStyle = "#ddd"; g.lineWidth = 1;
    const [ox, oy] = toPad([0, 0]);
    g.beginPath(); g.moveTo(0, oy); g.lineTo(SIZE, oy); g.moveTo(ox, 0); g.lineTo(ox, SIZE); g.stroke();
    if (scene.prior && L === 2) contours(g, scene.prior);
    g.globalAlpha = scene.backdrop ? 0.8 : 0.55;
    points.forEach((p, i) => {
      const [x, y] = toPad(p);
      g.fillStyle = labels ? COLOURS[labels[i] % 10] : "#555";
      g.fillRect(x - 1.5, y - 1.5, 3, 3);
    });
    g.globalAlpha = 1;
    if (scene.q) {                         // the image at hand: its mean and one-sigma ellipse
      const [cx, cy] = toPad(project(scene.q.mu)), e = ellipse(scene.q.sigma);
      g.strokeStyle = "#000"; g.lineWidth = 2;
      g.beginPath(); g.ellipse(cx, cy, e.radii[0] * scale, e.radii[1] * scale, -e.angle, 0, 2 * Math.PI); g.stroke();
      g.beginPath(); g.arc(cx, cy, 3, 0, 2 * Math.PI); g.fillStyle = "#000"; g.fill();
    }
    if (scene.zSample) {                   // its sample z = mu + sigma eps: a hollow green dot
      const [x, y] = toPad(project(scene.zSample));
      g.strokeStyle = "#0a0"; g.lineWidth = 2;
      g.beginPath(); g.arc(x, y, 5, 0, 2 * Math.PI); g.stroke();
    }
    const [x, y] = toPad(project(scene.z));  // the code on show: a red cross
    g.strokeStyle = "#d00"; g.lineWidth = 2;
    g.beginPath(); g.moveTo(x - 8, y); g.lineTo(x + 8, y); g.moveTo(x, y - 8); g.lineTo(x, y + 8); g.stroke();
    g.lineWidth = 1;
    const seen = labels ? [...new Set(labels)].sort((p, q) => p - q) : [];
    if (seen.length <= 10) {               // a legend, while each label has a colour of its own
      g.fillStyle = "rgba(255, 255, 255, 0.85)"; g.fillRect(2, 2, 22 * seen.length + 6, 16);
      seen.forEach((label, k) => {
        g.fillStyle = COLOURS[label % 10]; g.fillRect(6 + 22 * k, 6, 8, 8);
        g.fillStyle = "#333"; g.font = "10px sans-serif"; g.fillText(String(label), 16 + 22 * k, 14);
      });
    }
  }

  return { project, fromPad, moveOnPad, manifold, contourLines, draw };
}
