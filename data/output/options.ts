/**
 * The options every command that writes an output shares, declared once: each command's option
 * type extends {@linkcode OutputOptions} instead of repeating these fields.
 * @module
 */

/** How an output is written (the `--break-lock`, `--overwrite` and `--silent` flags). */
export interface OutputOptions {
  /** Take the output's lock even from a live holder (`--break-lock`). */
  breakLock?: boolean;
  /** Replace an output made with other settings instead of refusing (`--overwrite`). */
  overwrite?: boolean;
  /** Draw no progress bar and print nothing but errors. */
  silent?: boolean;
}
