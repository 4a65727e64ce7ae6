/**
 * The HDF5 activation store: BERT's L+1 hidden states per example, in BERTVision's layout, so
 * the adapter-pooler models train from disk by streaming batches.
 *
 * Datasets (N examples, T = max_seq_length tokens, H features, L+1 layers):
 * - `embeds`: [N, L+1, T, H] (layout "full", BERTVision's) or [N, L+1, H] (layout "cls": the
 *   [CLS] token only). dtype "f32" is `<f4`; dtype "f16" stores IEEE half bit patterns in a
 *   `<u2` dataset with attribute `encoding = "float16-bits"` (h5wasm 0.10.3 cannot write
 *   2-byte floats; numpy reads them with `.view(numpy.float16)`), decoded here transparently.
 * - `input_ids`, `token_type_ids`, `attention_mask`: [N, T] int32.
 * - `labels`: [N] (or [N, W]) int64 for classification / float32 for regression.
 * - `idx`: [N] int64, the example (or SQuAD feature) index.
 * All are chunked along N by `chunkRows` and allocated at creation, so writing rows never
 * changes the file's structure.
 * - `chunk_hashes`: [ceil(N / chunkRows), 6] int64, a hash per block of rows of each dataset
 *   above (chunk_hashes.ts), written with the block's last row and checked by the readers when
 *   they first read the block: bytes changed after writing fail the read naming the file, the
 *   dataset and the rows. A store written before them reads unverified (said once).
 *
 * Resumability: rows are written in order; after every `flushEveryRows` rows the HDF5 file is
 * flushed, its attribute `rows_complete` set to the rows now on disk, and then a sidecar
 * `FILE.state.json` (settings + rows done) is replaced atomically. Both only ever claim rows that
 * reached the file before them, so after a kill -9 between writes,
 * {@linkcode H5Store.openForResume} reopens the file in "a" mode and continues from there (from
 * `rows_complete` when the sidecar is gone); rows past the claim are simply written again.
 *
 * Completion is explicit: the attributes `fingerprint` (a hash of the store's settings and
 * attributes: the model's weights hash and the inputs' hash among them) and then `complete = 1`
 * are written last, when every row is in (no time stamp: a resumed store equals an
 * uninterrupted one). A store without them is incomplete,
 * sidecar or not; readers here refuse to treat it as whole, and so should h5py users:
 * `assert f.attrs.get("complete") == 1` before reading, or read only `f.attrs["rows_complete"]`
 * rows. A foreign file (no `format` attribute: not written here) is taken as it is.
 *
 * The attribute `adapter` names the device(s) that computed the rows (`H5WriterOptions.adapter`):
 * information, not a setting (not in the fingerprint, not compared on resume). A set of shards
 * of one capture reads through the same interface ({@linkcode StoreReader}, data/shard_set.ts).
 *
 * The parts, one job each: settings.ts (what a store holds), rows.ts (rows written and read),
 * fingerprint.ts (settings read back, compared and hashed), chunk_hashes.ts (the rows' hashes),
 * state.ts (the resume sidecar),
 * hdf5.ts (h5wasm and its errors), writer.ts ({@linkcode H5Store}), reader.ts
 * ({@linkcode H5Reader}), seed_store.ts (the seed's own three-file stores, read as one:
 * {@linkcode SeedStoreReader}). Its outputs follow the output protocol (data/output/).
 * @module
 */
export type { H5StoreSettings, H5WriterOptions } from "./settings.ts";
export {
  copyRow,
  emptyRows,
  type H5ReadRows,
  type H5Rows,
  type RowWidths,
  rowWidths,
} from "./rows.ts";
export { INFO_ATTRS, storeFingerprint, storeSettingsDiff, storeSettingsOf } from "./fingerprint.ts";
export { statePath } from "./state.ts";
export { CHUNK_HASHES, HASHED } from "./chunk_hashes.ts";
export { H5Store } from "./writer.ts";
export { H5Reader, type StoreReader } from "./reader.ts";
export {
  isSeedStoreName,
  SEED_STORE_TASKS,
  seedStoreFiles,
  SeedStoreReader,
} from "./seed_store.ts";
