// distributions.js: the model's three distributions, and all of their math the page uses.
//
//   prior       p(z)     which one, from the exported data (export.py): {"type": "StandardNormal"}, or a
//                        learned mixture {"type": "MixtureOfGaussians" | "VampPrior", "means", "logvars"}
//                        (M, L) each (a VampPrior's: the encoder's posteriors of its pseudo-inputs)
//   posterior   q(z|x)   {"type": "DiagonalGaussian", "param": "logvar" | "logstd"}: the encoder's output
//                        h (2L) is mu = h[:L] and logvar = h[L:] (or logvar = 2 h[L:] for logstd)
//   likelihood  p(x|z)   {"type": "Bernoulli", "logits": true | false} or {"type": "Gaussian", "variance": 0.5},
//                        read from the decoder's output; its mean is the image shown (model.decode_mean)
//
// Each is an object with the same methods whatever its type, so a learned prior (or another
// posterior) is one more entry in PRIORS (POSTERIORS) and nothing else in the page changes.
// The formulas are evaluation.py's, line for line, in float64.
"use strict";

const LOG_2PI = Math.log(2 * Math.PI);

function standardNormal() {                // one N(0, 1) draw, by Box-Muller
  return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
}

// log sum_k exp(v_k), from the largest v so no exp overflows and one term is exp(0) = 1   [MIX-2] [IWAE-3]
function logSumExp(values) {
  const top = Math.max(...values);
  return top + Math.log(values.reduce((s, v) => s + Math.exp(v - top), 0));
}

// rows of an exported (M, L) float32 array, as plain numbers
function rowsOf(spec) {
  const flat = fromBase64(spec, Float32Array), n = spec.shape[1];
  return Array.from({ length: spec.shape[0] }, (_, m) => Array.from(flat.subarray(m * n, (m + 1) * n)));
}

// p(z) = (1/M) sum_m N(z; mean_m, diag exp(logvar_m)), both learned priors (distributions/mixture.py):
// it has no closed-form KL from q(z|x) (klPerDim null), so the ELBO's KL is the one-sample
// log q(z|x) - log p(z) at the page's z [KL-4], as the VAE's MonteCarloKL
function mixturePrior(spec, name) {
  const means = rowsOf(spec.means), logvars = rowsOf(spec.logvars), M = means.length;
  // log N(z; mean_m, v_m) = -1/2 sum_d ( (z_d - mean_md)^2 / v_md + logvar_md + log(2 pi) )   [MIX-1]
  const logComponent = (z, m) => z.reduce((s, v, d) => s - 0.5 * ((v - means[m][d]) ** 2 * Math.exp(-logvars[m][d]) + logvars[m][d] + LOG_2PI), 0);
  return {
    name, means, logvars,
    // log p(z) = logsumexp_m log N(z; mean_m, v_m) - log M   [MIX-2]
    logDensity: (z) => logSumExp(means.map((_, m) => logComponent(z, m))) - Math.log(M),
    // a component m uniform over the M, then z = mean_m + exp(logvar_m / 2) eps (mixture_sample)
    sample: () => {
      const component = Math.floor(Math.random() * M), eps = Array.from({ length: means[0].length }, standardNormal);
      return { z: eps.map((e, d) => means[component][d] + Math.exp(0.5 * logvars[component][d]) * e), component, eps };
    },
    klPerDim: null,
  };
}

// Each prior: name, logDensity(z), sample() -> {z, component (a mixture's, else null), eps}, and
// klPerDim(q), the closed-form KL of each dimension, or null where there is none
const PRIORS = {
  // p(z) = N(0, I)
  StandardNormal(spec, L) {
    return {
      name: "N(0, I)",
      // log N(z; 0, I) = sum_d ( -z_d^2 / 2 - log(2 pi) / 2 )   (evaluation.log_standard_normal)
      logDensity: (z) => z.reduce((s, v) => s - 0.5 * v * v - 0.5 * LOG_2PI, 0),
      sample: () => { const eps = Array.from({ length: L }, standardNormal); return { z: eps.slice(), component: null, eps }; },
      // KL(q || p) of each dimension in closed form, q = N(mu, exp(logvar)):
      //   0.5 (mu_d^2 + exp(logvar_d) - 1 - logvar_d)   [KL-1]
      klPerDim: (q) => q.mu.map((m, d) => 0.5 * (m * m + Math.exp(q.logvar[d]) - 1 - q.logvar[d])),
    };
  },
  MixtureOfGaussians: (spec) => mixturePrior(spec, "a mixture of " + spec.means.shape[0] + " learned Gaussians"),
  VampPrior: (spec) => mixturePrior(spec, "VampPrior, " + spec.means.shape[0] + " pseudo-inputs"),
};

const POSTERIORS = {
  // q(z|x) = N(mu, diag exp(logvar)); models/vae.py VAE.encode reads the encoder's output h
  DiagonalGaussian(spec, L) {
    const scale = { logvar: 1, logstd: 2 }[spec.param];    // logvar = 2 log sigma   [LOGSTD-1]
    if (!scale) throw new Error("distributions.js: no posterior parameterised by " + spec.param);
    return {
      name: "N(mu, diag sigma^2), the encoder giving mu and " + (spec.param === "logvar" ? "log sigma^2" : "log sigma"),
      fromEncoder: (h) => ({ mu: Array.from(h.slice(0, L)), logvar: Array.from(h.slice(L, 2 * L), (a) => scale * a) }),
      sigma: (q) => q.logvar.map((v) => Math.exp(0.5 * v)),
      // z = mu + exp(logvar / 2) eps, eps ~ N(0, I)   [REP-1]
      sampleEps: () => Array.from({ length: L }, standardNormal),
      reparameterize: (q, eps) => q.mu.map((m, d) => m + Math.exp(0.5 * q.logvar[d]) * eps[d]),
      // log q(z|x) at z = mu + sigma eps, written in eps (evaluation.log_diagonal_normal)   [IWAE-2]
      logDensityAtEps: (q, eps) => eps.reduce((s, e, d) => s - 0.5 * e * e - 0.5 * q.logvar[d] - 0.5 * LOG_2PI, 0),
    };
  },
};

const LIKELIHOODS = {
  // Bernoulli per pixel. From logits a (bce): log p(x|z) = -sum ( max(a, 0) - a x + log(1 + exp(-|a|)) )
  // [BCE-1]; from probabilities p (bce-prob): sum ( x log p + (1 - x) log(1 - p) ), each log clamped
  // at -100 as torch's BCELoss does [BCE-3]. Its mean is sigmoid(a), or p.
  Bernoulli(spec) {
    const clamp = (v) => Math.max(v, -100);
    return {
      name: "Bernoulli" + (spec.logits ? " (from logits)" : ""),
      binaryOnly: true,                   // a probability for binary images only
      mean: (out) => (spec.logits ? out.map(sigmoid) : out),
      logProb: (out, x) => out.reduce((s, a, i) => s - (spec.logits
        ? Math.max(a, 0) - a * x[i] + Math.log1p(Math.exp(-Math.abs(a)))
        : -(x[i] * clamp(Math.log(a)) + (1 - x[i]) * clamp(Math.log1p(-a)))), 0),
    };
  },
  // N(x; out, variance I) per pixel: the mse loss with variance 1/2, log p(x|z) = -sum (x - out)^2 - D/2 log(pi)
  Gaussian(spec) {
    const v = spec.variance;
    return {
      name: "Gaussian, variance " + v,
      mean: (out) => out,
      logProb: (out, x) => out.reduce((s, m, i) => s - (x[i] - m) ** 2 / (2 * v), 0) - 0.5 * out.length * Math.log(2 * Math.PI * v),
    };
  },
};

// The three distributions of the model in DATA.model (export.py); null where the model has none (an
// autoencoder has no prior or posterior; the rmse loss is no likelihood)
function makeDistributions(model, L) {
  const make = (table, spec, what) => {
    if (!spec) return null;
    if (!(spec.type in table)) throw new Error("distributions.js has no " + what + " " + spec.type);
    return table[spec.type](spec, L);
  };
  return { prior: make(PRIORS, model.prior, "prior"), posterior: make(POSTERIORS, model.posterior, "posterior"),
           likelihood: make(LIKELIHOODS, model.likelihood, "likelihood") };
}
