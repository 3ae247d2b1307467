// Small inline-SVG plots for the HTML report: no scripts, no external files, so the report opens
// anywhere as a single file. SVG is emitted without an xmlns attribute (HTML5 inline SVG needs
// none), so the page holds no URL at all.
#pragma once

#include <string>
#include <vector>

namespace lowbit::report {

// &, <, >, " and ' escaped for HTML text and attribute values.
std::string html_escape(const std::string& s);

// About `n` round tick values (1, 2 or 5 times a power of ten) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int n = 5);

struct ScatterPoint {
    double x = 0;
    double y = 0;
    std::string label;
    bool highlight = false;  // drawn larger (the recommended variant)
    double x_err = 0;        // > 0: a horizontal error bar x - x_err .. x + x_err
};

// Scatter of `points` with labels; the points `front` (indices, ordered by x) are joined by a
// step line, the Pareto front. Points with x_err > 0 get error bars (class "errbar"), and the
// x axis covers them.
std::string svg_scatter(const std::vector<ScatterPoint>& points, const std::vector<size_t>& front,
                        const std::string& x_label, const std::string& y_label);

struct Bar {
    std::string label;
    double value = 0;
};

// Horizontal bars, one row per entry in the given order, labels on the left, values on the
// right. Bars start at 0; negative values draw as empty bars.
std::string svg_hbars(const std::vector<Bar>& bars, const std::string& value_label);

}  // namespace lowbit::report
