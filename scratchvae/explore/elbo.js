// elbo.js: the ELBO of the image at hand and its importance-sampled log-likelihood, as evaluation.py
// computes them for one image (elbo_per_image, chunk_log_weights, importance_sampled_nll), on the
// layers of layers.js and the distributions of distributions.js. Nats, with the sign of a loss.
"use strict";

// The model as the page runs it: its layers and its distributions (DATA.model is export.py's output)
function makeModel(spec, L) {
  return { L, encoder: prepareLayers(spec.encoder), decoder: prepareLayers(spec.decoder), ...makeDistributions(spec, L) };
}

const asInput = (z) => ({ shape: [z.length], data: Float64Array.from(z) });

// the decoder's output for z (what the likelihood reads: logits for bce), {shape, data}
const decodeOutput = (model, z) => forward(model.decoder, asInput(z));

// model.decode_mean: the likelihood's mean of the decoder's output (the output itself for rmse)
function decodeMean(model, z) {
  const out = decodeOutput(model, z);
  return model.likelihood ? { shape: out.shape, data: model.likelihood.mean(out.data) } : out;
}

// q(z|x) of an image x {shape: [C, H, W], data}: {mu, logvar}; an autoencoder's code as {mu, logvar: null}
function encodeImage(model, x) {
  const h = forward(model.encoder, x).data;
  return model.posterior ? model.posterior.fromEncoder(h) : { mu: Array.from(h), logvar: null };
}

// -log p(x|z) (evaluation._recon_per_image), null when the loss is no likelihood (rmse)
const reconAt = (model, x, out) => (model.likelihood ? -model.likelihood.logProb(out.data, x.data) : null);

// One z = mu + sigma eps and the negative ELBO's two terms (elbo_per_image):
//   recon = -log p(x|z),  total = recon + kl,  kl = KL(q(z|x) || p(z)) in closed form, per dimension and
//   summed [KL-1]; for a learned prior, which has none, the one-sample log q(z|x) - log p(z) at this z [KL-4]
// An autoencoder: recon at its code, no kl.
function elboTerms(model, x, q, eps) {
  if (!model.posterior) {
    const out = decodeOutput(model, q.mu);
    return { z: q.mu, out, recon: reconAt(model, x, out), klPerDim: null, kl: null, total: null };
  }
  const z = model.posterior.reparameterize(q, eps);
  const out = decodeOutput(model, z);
  const recon = reconAt(model, x, out), klPerDim = model.prior.klPerDim ? model.prior.klPerDim(q) : null;
  const kl = klPerDim ? klPerDim.reduce((s, v) => s + v, 0)
    : model.posterior.logDensityAtEps(q, eps) - model.prior.logDensity(z);
  return { z, out, recon, klPerDim, kl, total: recon === null ? null : recon + kl };
}

// log w = log p(x|z) + log p(z) - log q(z|x) at z = mu + sigma eps (chunk_log_weights)   [IWAE-1]
function logWeight(model, x, q, eps) {
  const z = model.posterior.reparameterize(q, eps);
  const logPxz = model.likelihood.logProb(decodeOutput(model, z).data, x.data);
  return logPxz + model.prior.logDensity(z) - model.posterior.logDensityAtEps(q, eps);
}

// -log (1/K) sum_k exp(log w_k), by log-sum-exp about the largest log w   [IWAE-3]
const nllFromLogWeights = (logW) => -(logSumExp(logW) - Math.log(logW.length));

// The nll of x with K importance samples, computed a few samples at a time (step) so the page keeps
// answering while a slow decoder runs K times; eps are drawn up front, K x L (the test reads them)
function nllEstimate(model, x, q, K) {
  const est = { K, eps: Array.from({ length: K }, () => model.posterior.sampleEps()), logW: [], value: null, done: false };
  est.step = (n) => {
    const end = Math.min(K, est.logW.length + n);
    for (let k = est.logW.length; k < end; k++) est.logW.push(logWeight(model, x, q, est.eps[k]));
    est.done = est.logW.length === K;
    if (est.done) est.value = nllFromLogWeights(est.logW);
    return est.done;
  };
  return est;
}
