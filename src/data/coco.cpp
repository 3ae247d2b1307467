#include "data/coco.h"

#include <fmt/format.h>

#include <cmath>
#include <unordered_map>

#include "core/fs.h"
#include "data/json_sax.h"

namespace lowbit {

namespace {

enum class Section { None, Images, Annotations, Categories };

const char* section_name(Section s) {
    switch (s) {
        case Section::Images: return "images";
        case Section::Annotations: return "annotations";
        case Section::Categories: return "categories";
        case Section::None: break;
    }
    return "?";
}

// A scalar JSON value as the record fields need it.
struct Scalar {
    enum class Kind { Null, Bool, Number, String } kind = Kind::Null;
    double d = 0;
    int64_t i = 0;
    bool integral = false;
    std::string s;
};

// Fields of the record being read; `has_*` tells which keys were present.
struct Record {
    CocoAnnotation ann;
    std::string text;  // file_name or name
    int64_t id = 0, width = 0, height = 0;
    int n_bbox = 0;
    bool has_id = false, has_image_id = false, has_category_id = false, has_area = false,
         has_score = false;
};

// Handler for parse_json_sax (data/json_sax.h). Tracks nesting depth; only scalars and the bbox
// array of records are materialized, every other container is skipped by depth.
class CocoSax {
public:
    CocoSax(bool results, std::string what, CocoDataset* out)
        : results_(results), what_(std::move(what)), out_(out) {}

    const Status& status() const { return status_; }
    bool saw_top() const { return saw_top_; }

    bool null() { return scalar(Scalar{}); }
    bool boolean(bool v) {
        Scalar s;
        s.kind = Scalar::Kind::Bool;
        s.d = v ? 1 : 0;
        s.i = v ? 1 : 0;
        s.integral = true;
        return scalar(s);
    }
    bool number_integer(int64_t v) {
        Scalar s;
        s.kind = Scalar::Kind::Number;
        s.d = static_cast<double>(v);
        s.i = v;
        s.integral = true;
        return scalar(s);
    }
    bool number_float(double v) {
        Scalar s;
        s.kind = Scalar::Kind::Number;
        s.d = v;
        // Python treats 3.0 and 3 as the same dict key, so an integral float is a valid id.
        s.integral = std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 9.2e18;
        s.i = s.integral ? static_cast<int64_t>(v) : 0;
        return scalar(s);
    }
    bool string(std::string& v) {
        Scalar s;
        s.kind = Scalar::Kind::String;
        s.s = std::move(v);
        return scalar(s);
    }

    bool start_object() {
        if (depth_ == 0) {
            saw_top_ = true;
            if (results_) {
                return fail(
                    invalid("{}: results must be a JSON array of objects "
                            "(as pycocotools' loadRes requires), found an object",
                            what_));
            }
        } else if (depth_ == record_depth() - 1 && section_ != Section::None) {
            in_record_ = true;
            rec_ = Record{};
            key_.clear();
        } else if (depth_ == record_depth() && in_record_ && key_ == "bbox") {
            return fail(record_error("'bbox' must be an array of 4 numbers"));
        }
        ++depth_;
        return true;
    }

    bool end_object() {
        --depth_;
        if (in_record_ && depth_ == record_depth() - 1) {
            in_record_ = false;
            if (!finish_record()) return false;
            ++index_;
        }
        return true;
    }

    bool start_array() {
        if (depth_ == 0) {
            saw_top_ = true;
            if (!results_) {
                return fail(
                    invalid("{}: a COCO annotation file must be a JSON object with "
                            "'images', 'annotations' and 'categories', found an array",
                            what_));
            }
            section_ = Section::Annotations;
            index_ = 0;
        } else if (!results_ && depth_ == 1) {
            section_ = Section::None;
            if (key_ == "images") section_ = Section::Images;
            if (key_ == "annotations") section_ = Section::Annotations;
            if (key_ == "categories") section_ = Section::Categories;
            if (section_ != Section::None) seen_[static_cast<int>(section_)] = true;
            index_ = 0;
        } else if (section_ != Section::None && !in_record_ && depth_ == record_depth() - 1) {
            return fail(invalid("{}: {}[{}] is not an object", what_, record_kind(), index_));
        } else if (in_record_ && depth_ == record_depth() && key_ == "bbox") {
            in_bbox_ = true;
            rec_.n_bbox = 0;
        } else if (in_bbox_) {
            return fail(record_error("'bbox' must be an array of 4 numbers"));
        }
        ++depth_;
        return true;
    }

    bool end_array() {
        --depth_;
        if (in_bbox_ && depth_ == record_depth()) in_bbox_ = false;
        if (!results_ && depth_ == 1) section_ = Section::None;
        return true;
    }

    bool key(std::string& k) {
        if (depth_ == 1 && !results_) {
            key_ = k;
        } else if (in_record_ && depth_ == record_depth()) {
            key_ = k;
        }
        return true;
    }

    bool has_section(Section s) const { return seen_[static_cast<int>(s)]; }

private:
    // Depth of a record's keys: results [ {..} ] -> 2; ground truth { "x": [ {..} ] } -> 3.
    int record_depth() const { return results_ ? 2 : 3; }

    const char* record_kind() const { return results_ ? "results" : section_name(section_); }

    bool fail(Status st) {
        if (status_.is_ok()) status_ = std::move(st);
        return false;
    }

    Status record_error(const std::string& msg) const {
        std::string id;
        if (rec_.has_id) id = fmt::format(" (id {})", rec_.id);
        return invalid("{}: {}[{}]{}: {}", what_, record_kind(), index_, id, msg);
    }

    static const char* scalar_kind_name(const Scalar& s) {
        switch (s.kind) {
            case Scalar::Kind::Null: return "null";
            case Scalar::Kind::Bool: return "a boolean";
            case Scalar::Kind::Number: return "a number";
            case Scalar::Kind::String: return "a string";
        }
        return "a scalar";
    }

    bool want_int(const Scalar& s, int64_t& dst, bool& has) {
        if (s.kind == Scalar::Kind::Null) return true;
        if (s.kind != Scalar::Kind::Number || !s.integral) {
            return fail(record_error(fmt::format("'{}' must be an integer", key_)));
        }
        dst = s.i;
        has = true;
        return true;
    }

    bool want_number(const Scalar& s, double& dst, bool& has) {
        if (s.kind == Scalar::Kind::Null) return true;
        if (s.kind != Scalar::Kind::Number) {
            return fail(record_error(fmt::format("'{}' must be a number", key_)));
        }
        dst = s.d;
        has = true;
        return true;
    }

    bool scalar(const Scalar& s) {
        if (depth_ == 0) {
            return fail(invalid("{}: expected a JSON {}", what_, results_ ? "array" : "object"));
        }
        if (in_bbox_) {
            if (depth_ != record_depth() + 1) {
                return fail(record_error("'bbox' must be an array of 4 numbers"));
            }
            if (s.kind != Scalar::Kind::Number) {
                return fail(record_error("'bbox' must be an array of 4 numbers"));
            }
            if (rec_.n_bbox >= 4) return fail(record_error("'bbox' has more than 4 values"));
            rec_.ann.bbox[static_cast<size_t>(rec_.n_bbox++)] = s.d;
            return true;
        }
        if (section_ != Section::None && depth_ == record_depth() - 1) {
            return fail(invalid("{}: {}[{}] is not an object", what_, record_kind(), index_));
        }
        if (!in_record_ || depth_ != record_depth()) return true;
        if (key_ == "bbox" && section_ == Section::Annotations && s.kind != Scalar::Kind::Null) {
            return fail(record_error(fmt::format("'bbox' must be an array of 4 numbers, found {}",
                                                 scalar_kind_name(s))));
        }
        bool dummy = false;
        if (key_ == "id") return want_int(s, rec_.id, rec_.has_id);
        switch (section_) {
            case Section::Images:
                if (key_ == "file_name" && s.kind == Scalar::Kind::String) rec_.text = s.s;
                if (key_ == "width") return want_int(s, rec_.width, dummy);
                if (key_ == "height") return want_int(s, rec_.height, dummy);
                return true;
            case Section::Categories:
                if (key_ == "name" && s.kind == Scalar::Kind::String) rec_.text = s.s;
                return true;
            case Section::Annotations:
                if (key_ == "image_id") return want_int(s, rec_.ann.image_id, rec_.has_image_id);
                if (key_ == "category_id") {
                    return want_int(s, rec_.ann.category_id, rec_.has_category_id);
                }
                if (key_ == "area") return want_number(s, rec_.ann.area, rec_.has_area);
                if (key_ == "score") return want_number(s, rec_.ann.score, rec_.has_score);
                if (key_ == "iscrowd") {
                    // pycocotools: ignore = 'iscrowd' in gt and gt['iscrowd'] (truthiness).
                    if (s.kind == Scalar::Kind::Number || s.kind == Scalar::Kind::Bool) {
                        rec_.ann.iscrowd = s.d != 0;
                    } else if (s.kind != Scalar::Kind::Null) {
                        return fail(record_error("'iscrowd' must be 0/1 or a boolean"));
                    }
                }
                return true;
            case Section::None: return true;
        }
        return true;
    }

    bool finish_record() {
        switch (section_) {
            case Section::Images: {
                if (!rec_.has_id) return fail(record_error("missing 'id'"));
                out_->images.push_back({rec_.id, std::move(rec_.text), rec_.width, rec_.height});
                return true;
            }
            case Section::Categories: {
                if (!rec_.has_id) return fail(record_error("missing 'id'"));
                out_->categories.push_back({rec_.id, std::move(rec_.text)});
                return true;
            }
            case Section::Annotations: {
                if (!rec_.has_image_id) return fail(record_error("missing 'image_id'"));
                if (!rec_.has_category_id) return fail(record_error("missing 'category_id'"));
                if (rec_.n_bbox == 0) {
                    return fail(record_error(results_ ? "missing 'bbox' (only bbox results are "
                                                        "supported)"
                                                      : "missing 'bbox'"));
                }
                if (rec_.n_bbox != 4) return fail(record_error("'bbox' must have 4 numbers"));
                CocoAnnotation& a = rec_.ann;
                if (results_) {
                    if (!rec_.has_score) return fail(record_error("missing 'score'"));
                    // COCO.loadRes: id = index + 1, area = w * h, iscrowd = 0.
                    a.id = static_cast<int64_t>(index_) + 1;
                    a.area = a.bbox[2] * a.bbox[3];
                    a.iscrowd = false;
                } else {
                    if (!rec_.has_id) return fail(record_error("missing 'id'"));
                    if (!rec_.has_area) {
                        return fail(
                            record_error("missing 'area' (COCO evaluation uses the "
                                         "annotation's area field for area ranges)"));
                    }
                    a.id = rec_.id;
                }
                out_->annotations.push_back(a);
                return true;
            }
            case Section::None: return true;
        }
        return true;
    }

    bool results_;
    std::string what_;
    CocoDataset* out_;
    Status status_;
    int depth_ = 0;
    Section section_ = Section::None;
    bool seen_[4] = {false, false, false, false};
    bool in_record_ = false;
    bool in_bbox_ = false;
    bool saw_top_ = false;
    size_t index_ = 0;
    std::string key_;
    Record rec_;
};

Status run_sax(const std::string& json, CocoSax& sax, const std::string& what) {
    JsonSaxResult r = parse_json_sax(json, sax);
    if (!sax.status().is_ok()) return sax.status();
    if (!r.ok) return invalid("{}: malformed JSON at byte {}: {}", what, r.position, r.message);
    if (!sax.saw_top()) return invalid("{}: empty JSON document", what);
    return Status::ok();
}

// pycocotools indexes images, categories and annotations by id in dicts, so a repeated id keeps
// the last record while imgToAnns keeps both: COCOeval then evaluates the last annotation twice
// in place of the two. No metric is meaningful on such a file; it is refused, naming both
// records.
template <typename T>
Status check_unique(const std::vector<T>& items, const char* section, const std::string& what) {
    std::unordered_map<int64_t, size_t> first;
    first.reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        auto [it, fresh] = first.emplace(items[i].id, i);
        if (!fresh) {
            return invalid("{}: {}[{}] and {}[{}] have the same id {}; ids must be unique "
                           "(pycocotools would silently keep only the last one)", what, section,
                           it->second, section, i, items[i].id);
        }
    }
    return Status::ok();
}

Status check_unique_ids(const CocoDataset& ds, const std::string& what) {
    LOWBIT_TRY(check_unique(ds.images, "images", what));
    LOWBIT_TRY(check_unique(ds.categories, "categories", what));
    return check_unique(ds.annotations, "annotations", what);
}

}  // namespace

Result<CocoDataset> parse_coco_gt(const std::string& json, const std::string& what) {
    CocoDataset ds;
    CocoSax sax(false, what, &ds);
    LOWBIT_TRY(run_sax(json, sax, what));
    if (!sax.has_section(Section::Images)) {
        return invalid("{}: no 'images' array (not a COCO annotation file?)", what);
    }
    if (!sax.has_section(Section::Categories)) {
        return invalid("{}: no 'categories' array (not a COCO annotation file?)", what);
    }
    if (!sax.has_section(Section::Annotations)) {
        return invalid("{}: no 'annotations' array (not a COCO annotation file?)", what);
    }
    LOWBIT_TRY(check_unique_ids(ds, what));
    return ds;
}

Result<CocoDataset> load_coco_gt(const std::string& path) {
    LOWBIT_ASSIGN(std::string text, read_file(path));
    return parse_coco_gt(text, path);
}

Result<std::vector<CocoAnnotation>> parse_coco_results(const std::string& json,
                                                       const std::string& what) {
    CocoDataset ds;
    CocoSax sax(true, what, &ds);
    LOWBIT_TRY(run_sax(json, sax, what));
    return std::move(ds.annotations);
}

Result<std::vector<CocoAnnotation>> load_coco_results(const std::string& path) {
    LOWBIT_ASSIGN(std::string text, read_file(path));
    return parse_coco_results(text, path);
}

namespace {

// A double as Python's json.dumps writes it: the shortest round-trip decimal, and NaN /
// Infinity / -Infinity for the non-finite values (fmt would write "nan" / "inf", which no JSON
// reader accepts; these three are what json.loads and data/json_sax.h read back).
struct PyJsonDouble {
    double v;
};

}  // namespace
}  // namespace lowbit

template <>
struct fmt::formatter<lowbit::PyJsonDouble> : fmt::formatter<double> {
    template <typename Ctx>
    auto format(lowbit::PyJsonDouble d, Ctx& ctx) const {
        if (std::isnan(d.v)) return fmt::format_to(ctx.out(), "NaN");
        if (std::isinf(d.v)) return fmt::format_to(ctx.out(), "{}", d.v > 0 ? "Infinity" : "-Infinity");
        return fmt::format_to(ctx.out(), "{}", d.v);
    }
};

namespace lowbit {

std::string coco_results_to_json(const std::vector<CocoAnnotation>& results) {
    fmt::memory_buffer buf;
    buf.push_back('[');
    for (size_t i = 0; i < results.size(); ++i) {
        const CocoAnnotation& r = results[i];
        if (i > 0) buf.push_back(',');
        // fmt's "{}" for double is the shortest representation that round-trips, so Python's
        // json module reads back exactly these doubles.
        fmt::format_to(std::back_inserter(buf),
                       "{{\"image_id\":{},\"category_id\":{},\"bbox\":[{},{},{},{}],\"score\":{}}}",
                       r.image_id, r.category_id, PyJsonDouble{r.bbox[0]}, PyJsonDouble{r.bbox[1]},
                       PyJsonDouble{r.bbox[2]}, PyJsonDouble{r.bbox[3]}, PyJsonDouble{r.score});
    }
    buf.push_back(']');
    return fmt::to_string(buf);
}

}  // namespace lowbit
