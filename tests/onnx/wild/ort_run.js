// ONNX Runtime (CPU, the reference for ONNX semantics) as a test oracle: runs one model on
// float32 .npy inputs and writes every output as float32 .npy. Tests only.
//
//   node ort_run.js ORT_DIR MODEL.onnx OUT_PREFIX IN0.npy [IN1.npy ...]
//
// ORT_DIR holds node_modules/onnxruntime-node (.ci/install-deps.sh installs it there with
// `npm install --ignore-scripts`). Inputs bind to the model's inputs in order; output k goes to
// OUT_PREFIX.K.npy. Exit code 1 with a message on any failure.
'use strict';
const fs = require('fs');
const path = require('path');

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.readUInt32BE(0) !== 0x934e554d || buf.toString('latin1', 4, 6) !== 'PY')
    throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header))
    throw new Error(`${file}: expected little-endian float32 in C order, header ${header.trim()}`);
  const m = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!m) throw new Error(`${file}: no shape in header`);
  const shape = m[1].split(',').map(s => s.trim()).filter(s => s.length).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; ++i) data[i] = buf.readFloatLE(start + 4 * i);
  return { shape, data };
}

function writeNpy(file, shape, data) {
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = Buffer.alloc(10 + header.length + 4 * data.length);
  out.writeUInt32BE(0x934e554d, 0);
  out.write('PY', 4, 'latin1');
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  for (let i = 0; i < data.length; ++i) out.writeFloatLE(data[i], 10 + header.length + 4 * i);
  fs.writeFileSync(file, out);
}

async function main() {
  const [ortDir, model, outPrefix, ...inputs] = process.argv.slice(2);
  if (!ortDir || !model || !outPrefix) throw new Error('usage: node ort_run.js ORT_DIR MODEL.onnx OUT_PREFIX IN.npy...');
  const ort = require(path.join(path.resolve(ortDir), 'node_modules', 'onnxruntime-node'));
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1,
                                                               graphOptimizationLevel: 'disabled' });
  if (inputs.length !== session.inputNames.length)
    throw new Error(`${model}: the model has ${session.inputNames.length} inputs, got ${inputs.length} .npy files`);
  const feeds = {};
  session.inputNames.forEach((name, i) => {
    const x = readNpy(inputs[i]);
    feeds[name] = new ort.Tensor('float32', x.data, x.shape);
  });
  const results = await session.run(feeds);
  session.outputNames.forEach((name, k) => {
    const t = results[name];
    if (t.type !== 'float32') throw new Error(`${model}: output '${name}' is ${t.type}, expected float32`);
    writeNpy(`${outPrefix}.${k}.npy`, t.dims, t.data);
  });
}

main().catch(e => { console.error(`ort_run: ${e.message || e}`); process.exit(1); });
