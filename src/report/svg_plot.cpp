#include "report/svg_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace lowbit::report {

namespace {

// Short tick text: enough decimals for the tick step, no trailing zeros.
std::string tick_text(double v, double step) {
    int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
    return fmt::format("{:.{}f}", std::abs(v) < step * 1e-6 ? 0.0 : v, std::clamp(decimals, 0, 9));
}

struct Range {
    double lo, hi;
};

// Data range with 8% padding on each side; a zero-width range is widened.
Range padded(double lo, double hi) {
    if (hi - lo <= 0) {
        double w = std::max(std::abs(lo) * 0.05, 1e-3);
        return {lo - w, hi + w};
    }
    double pad = (hi - lo) * 0.08;
    return {lo - pad, hi + pad};
}

}  // namespace

std::string html_escape(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::vector<double> nice_ticks(double lo, double hi, int n) {
    if (!(hi > lo) || n < 1) return {lo};
    double raw = (hi - lo) / n;
    double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 5.0, 10.0}) {
        step = m * mag;
        if (step >= raw) break;
    }
    std::vector<double> ticks;
    // Integer multiples of the step, so no rounding error accumulates along the axis.
    for (double i = std::ceil(lo / step - 1e-9); i <= std::floor(hi / step + 1e-9); ++i) {
        ticks.push_back(i * step);
    }
    return ticks;
}

std::string svg_scatter(const std::vector<ScatterPoint>& points, const std::vector<size_t>& front,
                        const std::string& x_label, const std::string& y_label) {
    const double w = 760, h = 440, left = 78, right = 150, top = 20, bottom = 56;
    const double pw = w - left - right, ph = h - top - bottom;
    std::string svg = fmt::format(
        "<svg class=\"plot\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" role=\"img\" "
        "aria-label=\"{2} vs {3}\">\n",
        w, h, html_escape(y_label), html_escape(x_label));
    if (points.empty()) return svg + "<text x=\"20\" y=\"40\">no data</text>\n</svg>\n";
    double xlo = points[0].x - points[0].x_err, xhi = points[0].x + points[0].x_err;
    for (const ScatterPoint& p : points) {
        xlo = std::min(xlo, p.x - std::max(0.0, p.x_err));
        xhi = std::max(xhi, p.x + std::max(0.0, p.x_err));
    }
    auto [ymin, ymax] = std::minmax_element(points.begin(), points.end(),
                                            [](auto& a, auto& b) { return a.y < b.y; });
    Range xr = padded(xlo, xhi), yr = padded(ymin->y, ymax->y);
    auto px = [&](double x) { return left + (x - xr.lo) / (xr.hi - xr.lo) * pw; };
    auto py = [&](double y) { return top + ph - (y - yr.lo) / (yr.hi - yr.lo) * ph; };

    svg += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fbfbfb\" stroke=\"#999\"/>\n",
        left, top, pw, ph);
    std::vector<double> xt = nice_ticks(xr.lo, xr.hi, 6), yt = nice_ticks(yr.lo, yr.hi, 6);
    double xs = xt.size() > 1 ? xt[1] - xt[0] : 1, ys = yt.size() > 1 ? yt[1] - yt[0] : 1;
    for (double t : xt) {
        svg += fmt::format(
            "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#e4e4e4\"/>"
            "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\" class=\"tick\">{4}</text>\n",
            px(t), top, top + ph, top + ph + 16, tick_text(t, xs));
    }
    for (double t : yt) {
        svg += fmt::format(
            "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#e4e4e4\"/>"
            "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\" class=\"tick\">{5}</text>\n",
            left, py(t), left + pw, left - 6, py(t) + 4, tick_text(t, ys));
    }
    svg += fmt::format(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"axis\">{}</text>\n"
        "<text x=\"16\" y=\"{}\" text-anchor=\"middle\" class=\"axis\" "
        "transform=\"rotate(-90 16 {})\">{}</text>\n",
        left + pw / 2, h - 14, html_escape(x_label), top + ph / 2, top + ph / 2,
        html_escape(y_label));

    // The front as a staircase: from each front point right to the next one's latency, then up.
    if (!front.empty()) {
        std::string path =
            fmt::format("M{:.1f},{:.1f}", px(points[front[0]].x), py(points[front[0]].y));
        for (size_t i = 1; i < front.size(); ++i) {
            const ScatterPoint& p = points[front[i]];
            path += fmt::format(" H{:.1f} V{:.1f}", px(p.x), py(p.y));
        }
        svg += fmt::format(
            "<path d=\"{}\" fill=\"none\" stroke=\"#d9480f\" stroke-width=\"2\" "
            "stroke-dasharray=\"6 3\"/>\n",
            path);
    }
    for (const ScatterPoint& p : points) {
        if (!(p.x_err > 0)) continue;
        const double x0 = px(p.x - p.x_err), x1 = px(p.x + p.x_err), y = py(p.y);
        svg += fmt::format(
            "<path class=\"errbar\" d=\"M{0:.1f},{1:.1f} H{2:.1f} M{0:.1f},{3:.1f} V{4:.1f} "
            "M{2:.1f},{3:.1f} V{4:.1f}\" stroke=\"#555\" stroke-width=\"1.2\" fill=\"none\">"
            "<title>{5}: {6:.3f} &#177; {7:.3f}</title></path>\n",
            x0, y, x1, y - 5, y + 5, html_escape(p.label), p.x, p.x_err);
    }
    for (size_t i = 0; i < points.size(); ++i) {
        const ScatterPoint& p = points[i];
        bool on_front = std::find(front.begin(), front.end(), i) != front.end();
        svg += fmt::format(
            "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\" stroke=\"#222\"><title>{}: "
            "{:.3f} ms, {:.4f}</title></circle>\n"
            "<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"label\">{}</text>\n",
            px(p.x), py(p.y), p.highlight ? 7 : 5, on_front ? "#d9480f" : "#4c6ef5",
            html_escape(p.label), p.x, p.y, px(p.x) + 8, py(p.y) - 7, html_escape(p.label));
    }
    svg += fmt::format(
        "<circle cx=\"{0}\" cy=\"{1}\" r=\"5\" fill=\"#d9480f\" stroke=\"#222\"/>"
        "<text x=\"{2}\" y=\"{3}\" class=\"tick\">Pareto front</text>\n"
        "<circle cx=\"{0}\" cy=\"{4}\" r=\"5\" fill=\"#4c6ef5\" stroke=\"#222\"/>"
        "<text x=\"{2}\" y=\"{5}\" class=\"tick\">dominated</text>\n",
        left + pw + 18, top + 12, left + pw + 28, top + 16, top + 32, top + 36);
    return svg + "</svg>\n";
}

std::string svg_hbars(const std::vector<Bar>& bars, const std::string& value_label) {
    const double row = 18, top = 8, bar_w = 340, value_w = 90;
    size_t longest = 8;
    for (const Bar& b : bars) longest = std::max(longest, b.label.size());
    const double label_w = std::min(560.0, 6.6 * static_cast<double>(longest) + 12);
    const double w = label_w + bar_w + value_w, h = top + row * bars.size() + 34;
    double vmax = 0;
    for (const Bar& b : bars) vmax = std::max(vmax, b.value);
    std::string svg = fmt::format(
        "<svg class=\"plot\" width=\"{0:.0f}\" height=\"{1:.0f}\" viewBox=\"0 0 {0:.0f} {1:.0f}\" "
        "role=\"img\" aria-label=\"{2}\">\n",
        w, h, html_escape(value_label));
    for (size_t i = 0; i < bars.size(); ++i) {
        const Bar& b = bars[i];
        double y = top + row * i;
        double len = vmax > 0 && b.value > 0 ? b.value / vmax * bar_w : 0;
        svg += fmt::format(
            "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" class=\"node\">{}</text>"
            "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#4c6ef5\">"
            "<title>{}: {:.6g}</title></rect>"
            "<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tick\">{:.4g}</text>\n",
            label_w - 6, y + 13, html_escape(b.label), label_w, y + 3, len, row - 5,
            html_escape(b.label), b.value, label_w + len + 4, y + 13, b.value);
    }
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"axis\">{}</text>\n", label_w,
                       h - 10, html_escape(value_label));
    return svg + "</svg>\n";
}

}  // namespace lowbit::report
