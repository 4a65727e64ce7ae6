/**
 * The project's seeded PRNG, host side: data order, subsets, generated data, initialisation and
 * everything else random derives from `--seed` through it. xoshiro128** seeded by splitmix32,
 * one stream per name (FNV-1a of the name mixed into the seed), Box–Muller normals: only 32-bit
 * integer arithmetic before the float64 transform, so values are the same on every platform.
 * Checked by model/init_test.ts (identical files from the same seed).
 * @module
 */

/** splitmix32 step: a well-mixed 32-bit value from a 32-bit state (seeding only). */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a hash of a string, to give each tensor its own stream. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * A small seeded PRNG (xoshiro128**), deterministic across platforms: only 32-bit integer
 * arithmetic, then float64 Box–Muller.
 */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  #spare: number | null = null;

  /** Seeds the generator from a number (integer part, any sign) and an optional stream name. */
  constructor(seed: number, stream = "") {
    const st = { s: (Math.trunc(seed) ^ fnv1a(stream)) | 0 };
    this.#a = splitmix32(st);
    this.#b = splitmix32(st);
    this.#c = splitmix32(st);
    this.#d = splitmix32(st);
    if ((this.#a | this.#b | this.#c | this.#d) === 0) this.#a = 1;
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return r;
  }

  /** Uniform in (0, 1): never 0, so `log` in Box–Muller is finite. */
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  /** Standard normal sample (Box–Muller, both values used). */
  normal(): number {
    if (this.#spare !== null) {
      const s = this.#spare;
      this.#spare = null;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const th = 2 * Math.PI * this.uniform();
    this.#spare = r * Math.sin(th);
    return r * Math.cos(th);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
