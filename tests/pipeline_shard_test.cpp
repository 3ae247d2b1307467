// Shards: the --shard spec, the eval split (contiguous blocks covering every image once), and
// merge_sensitivity: image rows from shards in any order give the single process's scores
// bit for bit, and a set with an image missing or twice is refused.
#include <gtest/gtest.h>

#include <random>

#include "eval/evaluator.h"
#include "pipeline/shard.h"
#include "quant/sensitivity/metric.h"
#include "quant/sensitivity/sensitivity.h"

namespace lowbit {
namespace {

TEST(Shard, SpecParsing) {
    pipeline::ShardOptions o;
    ASSERT_TRUE(pipeline::parse_shard_spec("2/3", o));
    EXPECT_EQ(o.index, 2);
    EXPECT_EQ(o.count, 3);
    for (const char* bad : {"3/3", "-1/2", "1", "a/2", "1/0", "1/2x", ""}) {
        EXPECT_FALSE(pipeline::parse_shard_spec(bad, o)) << bad;
    }
    pipeline::ShardOptions d;
    EXPECT_TRUE(pipeline::resolve_shard_options("", d));
    EXPECT_FALSE(pipeline::resolve_shard_options("0/2", d));  // no --shard-dir
    d.dir = "x";
    EXPECT_FALSE(pipeline::resolve_shard_options("", d));  // no --shard
    EXPECT_TRUE(pipeline::resolve_shard_options("1/2", d));
    EXPECT_TRUE(d.active());
}

TEST(Shard, EvalBlocksCoverEveryImageOnce) {
    for (size_t n : {0, 1, 2, 7, 250}) {
        for (int count = 1; count <= 5; ++count) {
            size_t next = 0;
            for (int i = 0; i < count; ++i) {
                const auto [b, e] = shard_block(n, i, count);
                EXPECT_EQ(b, next);
                EXPECT_LE(b, e);
                next = e;
            }
            EXPECT_EQ(next, n);
        }
    }
}

quant::SensitivityReport report_of(const quant::SensitivityOptions& so, const quant::ImageSums& s,
                                   int64_t images) {
    quant::SensitivityReport r;
    r.images = images;
    r.sums = s;
    for (size_t k = 0; k < s.nodes; ++k) {
        quant::NodeSensitivity n;
        n.measured = k;
        n.name = "n" + std::to_string(k);
        r.nodes.push_back(n);
    }
    return r;
}

TEST(Shard, MergedSensitivityEqualsSingle) {
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (auto metric : {quant::SensitivityMetric::OutputMse, quant::SensitivityMetric::Cosine,
                        quant::SensitivityMetric::LocalSqnr}) {
        quant::SensitivityOptions so;
        so.metric = metric;
        const int64_t images = 7;
        quant::ImageSums all;
        all.nodes = 5;
        all.width = 2;
        all.extra = metric == quant::SensitivityMetric::LocalSqnr ? 0 : 2;
        for (int64_t i = 0; i < images; ++i) {
            all.images.push_back(i);
            std::vector<double> row(all.nodes * all.width + all.extra);
            for (double& v : row) v = u(rng) * 1e-3;
            all.rows.push_back(row);
        }
        std::vector<quant::NodeSensitivity> single(all.nodes);
        nlohmann::ordered_json ref;
        ASSERT_TRUE(quant::score_image_sums(so, all, images, ref, single));
        for (int count = 1; count <= 3; ++count) {
            std::vector<quant::SensitivityReport> shards;
            for (int s = count - 1; s >= 0; --s) {  // any order of the shards
                quant::ImageSums part = all;
                part.images.clear();
                part.rows.clear();
                for (int64_t i = 0; i < images; ++i) {
                    if (i % count != s) continue;
                    part.images.push_back(i);
                    part.rows.push_back(all.rows[static_cast<size_t>(i)]);
                }
                shards.push_back(report_of(so, part, images));
            }
            auto merged = quant::merge_sensitivity(so, shards);
            ASSERT_TRUE(merged) << merged.status().message();
            ASSERT_EQ(merged->nodes.size(), all.nodes);
            for (const quant::NodeSensitivity& n : merged->nodes) {
                EXPECT_EQ(n.score, single[n.measured].score);  // bit for bit
                EXPECT_EQ(n.metrics, single[n.measured].metrics);
            }
            for (size_t r = 1; r < merged->nodes.size(); ++r) {
                EXPECT_GE(merged->nodes[r - 1].score, merged->nodes[r].score);
                EXPECT_EQ(merged->nodes[r].rank, static_cast<int>(r) + 1);
            }
        }
        // An image missing, or twice.
        quant::ImageSums part = all;
        part.images.pop_back();
        part.rows.pop_back();
        EXPECT_FALSE(quant::merge_sensitivity(so, {report_of(so, part, images)}));
        part = all;
        EXPECT_FALSE(
            quant::merge_sensitivity(so, {report_of(so, part, images), report_of(so, part, images)}));
    }
}

}  // namespace
}  // namespace lowbit
