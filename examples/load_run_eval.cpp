// A program built on the installed lowbit library: load an ONNX model, run it once on a
// constant image, then evaluate it on a COCO-format data set.
//
//   load_run_eval MODEL.onnx ANNOTATIONS.json IMAGES_DIR [MAX_IMAGES]
//
// Built by CMakeLists.txt here (find_package(lowbit)) or by hand with pkg-config:
//   g++ -std=c++20 load_run_eval.cpp $(pkg-config --cflags --libs lowbit) -o load_run_eval
#include <cstdio>
#include <cstdlib>
#include <string>

#include "onnx/model_io.h"
#include "pipeline/eval_job.h"
#include "runtime/executor.h"

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s MODEL.onnx ANNOTATIONS.json IMAGES_DIR [MAX_IMAGES]\n",
                     argv[0]);
        return 2;
    }
    const std::string model_path = argv[1];

    // Load and plan the model, then run it once on a mid-grey image.
    lowbit::Result<lowbit::Model> model = lowbit::load_model(model_path);
    if (!model) {
        std::fprintf(stderr, "error: %s\n", model.status().message().c_str());
        return 1;
    }
    lowbit::ExecutorOptions eo;
    eo.n_threads = 2;
    auto ex = lowbit::Executor::create(*model, eo);
    if (!ex) {
        std::fprintf(stderr, "error: %s\n", ex.status().message().c_str());
        return 1;
    }
    std::vector<lowbit::Tensor> feeds;
    for (const lowbit::TensorDesc& d : (*ex)->inputs()) {
        lowbit::Tensor t(d.dtype, d.shape);
        if (d.dtype == lowbit::DType::Float32) {
            for (float& v : t.span<float>()) v = 0.5f;
        }
        feeds.push_back(std::move(t));
    }
    auto outs = (*ex)->run(feeds);
    if (!outs) {
        std::fprintf(stderr, "error: %s\n", outs.status().message().c_str());
        return 1;
    }
    for (size_t i = 0; i < outs->size(); ++i) {
        std::printf("output %s %s\n", (*ex)->outputs()[i].name.c_str(),
                    lowbit::shape_str((*outs)[i].shape()).c_str());
    }

    // Evaluate it as `lowbit eval` does.
    lowbit::pipeline::EvalJob job;
    job.model = model_path;
    job.ann = argv[2];
    job.images = argv[3];
    job.max_images = argc > 4 ? std::atoi(argv[4]) : 20;
    job.threads = 2;
    job.quiet = true;
    auto run = lowbit::pipeline::evaluate_model_file(job);
    if (!run) {
        std::fprintf(stderr, "error: %s\n", run.status().message().c_str());
        return 1;
    }
    std::printf("images %lld\nmAP50-95 %.4f\nmAP50 %.4f\n",
                static_cast<long long>(run->result.num_images), run->result.coco.stats[0],
                run->result.coco.stats[1]);
    return 0;
}
