import assert from "node:assert/strict";
import { accuracy, f1Binary, matthews, pearson, rankAverage, spearman } from "./metrics.ts";

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

Deno.test("accuracy and F1 by hand", () => {
  assert.equal(accuracy([1, 0, 1, 1], [1, 1, 1, 0]), 0.5);
  // tp 1, fp 1, fn 1 -> 2/4
  assert.equal(f1Binary([1, 1, 0, 0], [1, 0, 1, 0]), 0.5);
  // tp 2, fp 0, fn 1 -> P 1, R 2/3 -> 0.8
  close(f1Binary([1, 1, 0], [1, 1, 1]), 0.8);
  // no positives anywhere, or none predicted: 0 (scikit-learn's value)
  assert.equal(f1Binary([0, 0, 0], [0, 0, 0]), 0);
  assert.equal(f1Binary([0, 0, 0], [1, 0, 1]), 0);
  assert.throws(() => accuracy([1], [1, 0]), /1 predictions for 2 gold labels/);
  assert.throws(() => accuracy([], []), /no examples/);
});

Deno.test("Matthews by hand; 0 when every prediction is the same", () => {
  // tp 2, tn 1, fp 1, fn 1: (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
  close(matthews([1, 0, 0, 1, 1], [1, 1, 0, 0, 1]), 1 / 6);
  assert.equal(matthews([1, 1, 1, 1], [1, 0, 1, 0]), 0);
  assert.equal(matthews([0, 0, 0], [0, 0, 0]), 0);
  assert.equal(matthews([1, 0, 1, 0], [1, 0, 1, 0]), 1);
  assert.equal(matthews([0, 1, 0, 1], [1, 0, 1, 0]), -1);
});

Deno.test("Pearson and Spearman by hand, ties averaged", () => {
  // x mean 2, y mean 13/3: sxy 5, sxx 2, syy 114/9 -> 15/sqrt(228)
  close(pearson([1, 2, 3], [2, 4, 7]), 15 / Math.sqrt(228));
  assert.deepEqual([...rankAverage([3, 1, 2, 2])], [4, 1, 2.5, 2.5]);
  assert.deepEqual([...rankAverage([5, 5, 5])], [2, 2, 2]);
  // ranks x [1, 2.5, 2.5, 4], y [1, 3, 2, 4]: sxy 4.5, sxx 4.5, syy 5 -> 3/sqrt(10)
  close(spearman([1, 2, 2, 3], [1, 3, 2, 4]), 3 / Math.sqrt(10));
  // monotone but not linear: Spearman 1, Pearson < 1
  close(spearman([1, 2, 3, 4], [1, 10, 100, 1000]), 1);
  assert.ok(pearson([1, 2, 3, 4], [1, 10, 100, 1000]) < 0.9);
  assert.ok(Number.isNaN(pearson([1, 1, 1], [1, 2, 3])));
});
