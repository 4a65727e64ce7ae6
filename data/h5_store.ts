/**
 * The HDF5 activation store, kept at this path for its importers: the code is in data/h5/
 * (writer, reader, settings and fingerprints, resume state), described in data/h5/mod.ts.
 * @module
 */
export * from "./h5/mod.ts";
