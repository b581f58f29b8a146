// layers.js: the encoder's and the decoder's forward pass in plain JavaScript, one image or code at a time.
//
// scratchvae/explore/export.py lists the layers of model.encoder and model.decoder, each the JSON its
// class's page_spec() declares; each function below is the forward() of the NumPy layer it names, for
// one image: an activation is {shape, data}, data a Float64Array in C order (NumPy's batch axis
// dropped). The weights are the float32 numbers the checkpoint holds; the sums run in float64 (a
// JavaScript number), so the page differs from NumPy's float32 forward by NumPy's rounding only.
"use strict";

// export.py's {shape, b64}: little-endian bytes, C order -> a typed array (Float32Array, Uint8Array)
function fromBase64(spec, Type) {
  const bytes = Uint8Array.from(atob(spec.b64), (c) => c.charCodeAt(0));
  return new Type(bytes.buffer);
}

// nn/activations.py sigmoid: 1 / (1 + exp(-x)), written 0.5 + 0.5 tanh(x / 2) as there   [SIG-1]
const sigmoid = (v) => 0.5 + 0.5 * Math.tanh(v / 2);

const LAYERS = {
  // nn/linear.py Linear.forward: y = x @ weight.T + bias, weight (out, in)   [LIN-1]
  Linear(layer, x) {
    const [nOut, nIn] = layer.weight.shape;
    const y = new Float64Array(nOut);
    for (let o = 0; o < nOut; o++) {
      let sum = layer.b ? layer.b[o] : 0;
      for (let i = 0; i < nIn; i++) sum += layer.w[o * nIn + i] * x.data[i];
      y[o] = sum;
    }
    return { shape: [nOut], data: y };
  },

  // nn/activations.py ReLU: y = max(x, 0)   [RELU-1]
  ReLU(layer, x) {
    return { shape: x.shape, data: x.data.map((v) => (v > 0 ? v : 0)) };
  },

  // nn/activations.py LeakyReLU: y = x if x > 0 else negative_slope * x   [LRELU-1]
  LeakyReLU(layer, x) {
    const a = layer.negative_slope;
    return { shape: x.shape, data: x.data.map((v) => (v > 0 ? v : a * v)) };
  },

  // nn/activations.py Sigmoid: the sigmoid above, elementwise
  Sigmoid(layer, x) {
    return { shape: x.shape, data: x.data.map(sigmoid) };
  },

  // nn/shape.py Reshape and Flatten: the same numbers in the same (C) order, another shape   [SHAPE-1]
  Reshape(layer, x) {
    return { shape: layer.shape, data: x.data };
  },
  Flatten(layer, x) {
    return { shape: [x.data.length], data: x.data };
  },

  // nn/batchnorm.py _BatchNorm.forward in eval mode, per channel c (the first axis of one image:
  // (C,) after a Linear, (C, H, W) after a conv)   [BN-1]:
  //   xhat = (x - running_mean) * inv_std,  inv_std = 1 / sqrt(running_var + eps);  y = weight * xhat + bias
  BatchNorm(layer, x) {
    const C = x.shape[0], per = x.data.length / C;
    const y = new Float64Array(x.data.length);
    for (let c = 0; c < C; c++) {
      const invStd = 1 / Math.sqrt(layer.running_var[c] + layer.eps);
      const gamma = layer.w ? layer.w[c] : 1, beta = layer.b ? layer.b[c] : 0;
      for (let k = c * per; k < (c + 1) * per; k++) y[k] = (x.data[k] - layer.running_mean[c]) * invStd * gamma + beta;
    }
    return { shape: x.shape, data: y };
  },

  // nn/conv.py Conv2d.forward, as the cross-correlation im2col and its product compute   [CONV-1]:
  //   out[co, oh, ow] = bias[co] + sum over ci, i, j of weight[co, ci, i, j] * x[ci, oh*s_h - p_h + i*d_h, ow*s_w - p_w + j*d_w]
  // (positions outside x are the zero padding), H_out = floor((H + 2 p_h - d_h (kH - 1) - 1) / s_h) + 1   [CONV-2]
  Conv2d(layer, x) {
    const [cOut, cIn, kH, kW] = layer.weight.shape, [, H, W] = x.shape;
    const [sH, sW] = layer.stride, [pH, pW] = layer.padding, [dH, dW] = layer.dilation;
    const hOut = Math.floor((H + 2 * pH - dH * (kH - 1) - 1) / sH) + 1;
    const wOut = Math.floor((W + 2 * pW - dW * (kW - 1) - 1) / sW) + 1;
    const out = new Float64Array(cOut * hOut * wOut);
    for (let co = 0; co < cOut; co++) {
      for (let oh = 0; oh < hOut; oh++) {
        for (let ow = 0; ow < wOut; ow++) {
          let sum = layer.b ? layer.b[co] : 0;
          for (let ci = 0; ci < cIn; ci++) {
            for (let i = 0; i < kH; i++) {
              const h = oh * sH - pH + i * dH;
              if (h < 0 || h >= H) continue;
              for (let j = 0; j < kW; j++) {
                const w = ow * sW - pW + j * dW;
                if (w < 0 || w >= W) continue;
                sum += layer.w[((co * cIn + ci) * kH + i) * kW + j] * x.data[(ci * H + h) * W + w];
              }
            }
          }
          out[(co * hOut + oh) * wOut + ow] = sum;
        }
      }
    }
    return { shape: [cOut, hOut, wOut], data: out };
  },

  // nn/conv_transpose.py ConvTranspose2d.forward, as the scatter-add its col2im does   [CONVT-1]:
  // every input value x[ci, h, w] adds weight[ci, co, i, j] * x[ci, h, w] into
  //   out[co, h*s_h - p_h + i*d_h, w*s_w - p_w + j*d_w]
  // (positions outside out fall in the padding and are dropped), and out starts at bias[co].
  //   H_out = (H - 1)*s_h - 2*p_h + d_h*(kH - 1) + output_padding_h + 1   (same for W)   [CONVT-2]
  ConvTranspose2d(layer, x) {
    const [cIn, cOut, kH, kW] = layer.weight.shape, [, H, W] = x.shape;
    const [sH, sW] = layer.stride, [pH, pW] = layer.padding, [dH, dW] = layer.dilation;
    const hOut = (H - 1) * sH - 2 * pH + dH * (kH - 1) + layer.output_padding[0] + 1;
    const wOut = (W - 1) * sW - 2 * pW + dW * (kW - 1) + layer.output_padding[1] + 1;
    const out = new Float64Array(cOut * hOut * wOut);
    for (let co = 0; co < cOut; co++) out.fill(layer.b ? layer.b[co] : 0, co * hOut * wOut, (co + 1) * hOut * wOut);
    for (let ci = 0; ci < cIn; ci++) {
      for (let h = 0; h < H; h++) {
        for (let w = 0; w < W; w++) {
          const v = x.data[(ci * H + h) * W + w];
          if (v === 0) continue;                    // adds nothing (a ReLU leaves many zeros)
          for (let co = 0; co < cOut; co++) {
            for (let i = 0; i < kH; i++) {
              const oh = h * sH - pH + i * dH;
              if (oh < 0 || oh >= hOut) continue;
              for (let j = 0; j < kW; j++) {
                const ow = w * sW - pW + j * dW;
                if (ow < 0 || ow >= wOut) continue;
                out[(co * hOut + oh) * wOut + ow] += layer.w[((ci * cOut + co) * kH + i) * kW + j] * v;
              }
            }
          }
        }
      }
    }
    return { shape: [cOut, hOut, wOut], data: out };
  },
};

// The layer specs with their arrays turned into Float32Arrays (once, when the page loads).
function prepareLayers(specs) {
  return specs.map((spec) => {
    if (!(spec.type in LAYERS)) throw new Error("layers.js has no layer " + spec.type);
    const layer = Object.assign({}, spec);
    const arrays = { weight: "w", bias: "b", running_mean: "running_mean", running_var: "running_var" };
    for (const [key, name] of Object.entries(arrays)) {
      if (spec[key]) layer[name] = fromBase64(spec[key], Float32Array);
    }
    return layer;
  });
}

// The layers run in order on one input {shape, data}: model.encoder on an image (C, H, W), model.decoder
// on a code (L) (its output: what the likelihood reads, the logits for bce)
function forward(layers, x) {
  for (const layer of layers) x = LAYERS[layer.type](layer, x);
  return x;
}
