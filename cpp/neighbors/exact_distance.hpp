// Exact distance of two rows in double: the finishing step of the exact and approximate kNN.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/enums.hpp"

namespace geoml {
namespace detail {

/// Exact distance between rows q and x for the finishing step (double accumulation).
template <typename T>
inline double exact_distance(const T* q, const T* x, int64_t d, Metric metric, double qn,
                             double xn) {
  double s = 0;
  switch (metric) {
    case Metric::Euclidean:
    case Metric::SqEuclidean:
      for (int64_t t = 0; t < d; ++t) {
        const double diff = double(q[t]) - double(x[t]);
        s += diff * diff;
      }
      return metric == Metric::Euclidean ? std::sqrt(s) : s;
    case Metric::Cosine: {
      if (qn == 0 || xn == 0) return 1.0;
      for (int64_t t = 0; t < d; ++t) s += double(q[t]) * double(x[t]);
      const double dist = 1.0 - s / (qn * xn);
      return std::min(2.0, std::max(0.0, dist));
    }
    case Metric::InnerProduct:
      for (int64_t t = 0; t < d; ++t) s += double(q[t]) * double(x[t]);
      return -s;
  }
  return s;
}

}  // namespace detail
}  // namespace geoml
