// The orthonormal basis that both CPU projection phases grow by one Gram-Schmidt direction per
// step (the span of the chosen items' rows V_{i,J}), and the rejection phase's residual test
// against it. The basis is kept twice: row-wise (one direction per row, for the update of a
// direction and the sequential pass) and transposed (one coordinate per row), so that the
// coefficients B y of a row y are one matrix-vector product with independent lanes instead of t
// dot products, each a chain of k dependent additions.
#pragma once

#include <cstdint>
#include <vector>

namespace ipdpp {

class OrthonormalBasis {
 public:
  // Room for `capacity` directions of length k; the basis starts empty.
  OrthonormalBasis(std::int64_t k, std::int64_t capacity);

  std::int64_t size() const { return size_; }
  // Direction s (s < size()), k values (followed by zeros up to a multiple of kLanes).
  const double* direction(std::int64_t s) const { return rows_.data() + s * stride_; }

  // Whether ||(I - B B^T) y||^2 > threshold + relative ||y||^2 for y [k] (||y||^2 as computed);
  // writes the coefficients B y to coef[0..size()) when it is (coef has room for
  // coefficient_capacity() values). The squared residual only shrinks as coefficients are
  // subtracted, so the test gives up as soon as a block of them brings it to the threshold: a
  // rejected row costs a fraction of the full product.
  bool residual_exceeds(const double* y, double threshold, double relative, double* coef) const;

  // The screen of residual_exceeds: false only when residual_exceeds(y, threshold, relative) is
  // false for the row y [k] whose bfloat16 rounding, widened to float32, is y_hat [k] (relative
  // >= 0, applied to a lower bound on ||y||^2 from ||y_hat||^2). It computes the
  // residual of y_hat against a float32 copy of the basis, with twice the numbers per vector, and
  // rejects when the result is below the threshold by more than screen_margin(k, size()) times
  // an upper bound on ||y||^2 (from ||y_hat||^2), a rigorous bound on its distance to the value
  // residual_exceeds computes, so that its rejections are residual_exceeds' rejections. Rows it
  // does not reject go to residual_exceeds.
  bool screen_may_exceed(const float* y_hat, double threshold, double relative) const;

  // Appends normalise((I - B B^T) y) for y [k] outside the span; `coef` holds B y when the caller
  // has it (residual_exceeds), else null. A second pass runs when the first cancelled more than
  // half of ||y||^2 (Kahan-Parlett, "twice is enough"), which keeps the basis orthonormal to
  // working precision.
  void append(const double* y, const double* coef);

  std::int64_t coefficient_capacity() const { return ld_; }

  // The relative error bound of screen_may_exceed for rows of length k against m directions.
  static double screen_margin(std::int64_t k, std::int64_t m);

 private:
  std::int64_t k_, capacity_, stride_, ld_, size_ = 0;
  std::vector<double> rows_;         // capacity x stride: direction s at s * stride
  std::vector<double> transposed_;   // k x ld: coordinate c of direction s at c * ld + s
  std::vector<float> transposed32_;  // the same, rounded to float32
  std::vector<double> scratch_;      // stride + ld: the direction being built, its coefficients
  double screen_margin_;             // screen_margin(k, size)
};

}  // namespace ipdpp
