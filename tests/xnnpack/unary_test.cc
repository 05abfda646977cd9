// Float Unary on XNNPACK against the reference: the kinds XNNPACK has run there (exact ones bit
// for bit, Sigmoid / HardSwish / Elu within XNNPACK's approximation error), the rest and every
// int8 Unary fall back to the reference kernel.
#include "xnnpack/xnnpack_test_util.h"

namespace tinyquant {
namespace xnnpack_test {
namespace {

struct Case {
  UnaryOptions f;
  bool on_xnnpack;
  double tolerance;  // |xnn - ref| <= tolerance * max(1, |ref|); 0: bit for bit
};

}  // namespace

TEST_CASE("xnnpack: Unary matches the reference; kinds XNNPACK lacks fall back") {
  const Case cases[] = {
      {{UnaryKind::kSigmoid, 0, 0}, true, 1e-6},      {{UnaryKind::kHardSwish, 0, 0}, true, 1e-6},
      {{UnaryKind::kLeakyRelu, 0.125f, 0}, true, 0},   {{UnaryKind::kElu, 1.5f, 0}, true, 1e-6},
      {{UnaryKind::kSqrt, 0, 0}, true, 0},             {{UnaryKind::kAbs, 0, 0}, true, 0},
      {{UnaryKind::kNeg, 0, 0}, true, 0},              {{UnaryKind::kPow, 2.0f, 0}, true, 0},
      {{UnaryKind::kPow, 3.0f, 0}, false, 0},          {{UnaryKind::kTanh, 0, 0}, false, 0},
      {{UnaryKind::kExp, 0, 0}, false, 0},             {{UnaryKind::kErf, 0, 0}, false, 0},
      {{UnaryKind::kGelu, 0, 0}, false, 0},            {{UnaryKind::kHardSigmoid, 0.2f, 0.5f}, false, 0},
      {{UnaryKind::kReciprocal, 0, 0}, false, 0},      {{UnaryKind::kSoftplus, 0, 0}, false, 0},
  };
  std::mt19937 rng(3101);
  auto runner = make_runner(1);
  for (const Case& c : cases) {
    const std::string kind = unary_kind_name(c.f.kind);
    CAPTURE(kind);
    ErrorStats stats{std::string("Unary ") + unary_kind_name(c.f.kind)};
    for (int iter = 0; iter < 40; ++iter) {
      std::vector<int32_t> shape;
      const int rank = uniform_int(rng, 1, 4);
      for (int d = 0; d < rank; ++d) shape.push_back(uniform_int(rng, 1, 9));
      TestTensor x(shape), got(shape), want(shape);
      x.uniform(rng, c.f.kind == UnaryKind::kSqrt ? 0.0f : -8.0f, 8.0f);
      Operator op;
      op.type = OpType::kUnary;
      op.name = "unary" + std::to_string(iter);
      op.mutable_unary() = c.f;
      ++stats.cases;
      const bool handled = run_xnnpack(*runner, op, {&x}, got);
      CHECK(handled == c.on_xnnpack);
      runner->reset();
      if (!handled) continue;
      ++stats.handled;
      run_reference(op, {&x}, want);
      for (int64_t i = 0; i < want.size(); ++i) {
        const double err = std::fabs(double(got[i]) - want[i]);
        const double tol = c.tolerance * std::max(1.0, std::fabs(double(want[i])));
        stats.max_abs = std::max(stats.max_abs, err);
        if (tol > 0) stats.max_ratio = std::max(stats.max_ratio, err / tol);
        if (!(err <= tol)) FAIL_CHECK("element " << i << " x " << x[i] << " xnnpack " << got[i] << " reference " << want[i]);
      }
    }
  }
  SUBCASE("int8 Unary (a lookup table) stays on the reference") {
    TestTensor q({2, 8}, DType::kInt8), table({256}, DType::kInt8), out({2, 8}, DType::kInt8);
    Quantization p;
    p.scale = {0.1f};
    p.zero_point = {0};
    q.view.quant = out.view.quant = &p;
    Operator op;
    op.type = OpType::kUnary;
    op.name = "lookup";
    const std::vector<TensorView> in = views_of({&q, &table});
    bool handled = true;
    int handle = 0;
    REQUIRE(runner->prepare_op(op, in.data(), 2, &out.view, 1, &handled, &handle).is_ok());
    CHECK(!handled);
  }
}

}  // namespace xnnpack_test
}  // namespace tinyquant
