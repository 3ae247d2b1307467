#!/usr/bin/env python3
"""Export CNNs with random weights for lowbit-vs-ONNX-Runtime speed checks (issue 16 item 1).

  .venv-train/bin/python tools/export_speed_models.py OUT_DIR [--names a,b]

Models: torchvision mobilenet_v3_large with its BatchNormalization nodes kept (not folded into
the convs), resnet50, convnext_tiny (LayerNorm, GELU), and a small MobileNetV3 + FPN
segmentation-style net with two ConvTranspose upsamplers. Weights are random (seeded); BN
statistics are randomised so that folding them changes the numbers.
"""
import argparse
import os

import torch
import torch.nn as nn
import torchvision


class SegFPN(nn.Module):
    """MobileNetV3-small features, an FPN-style neck with two ConvTranspose upsamplers."""

    def __init__(self, classes=8):
        super().__init__()
        feats = torchvision.models.mobilenet_v3_small().features
        self.stage8 = feats[:4]    # stride 8, 24 ch
        self.stage16 = feats[4:9]  # stride 16, 48 ch
        self.stage32 = feats[9:]   # stride 32, 576 ch
        self.lat32 = nn.Conv2d(576, 96, 1)
        self.lat16 = nn.Conv2d(48, 96, 1)
        self.lat8 = nn.Conv2d(24, 96, 1)
        self.up32 = nn.ConvTranspose2d(96, 96, 4, stride=2, padding=1)
        self.up16 = nn.ConvTranspose2d(96, 96, 4, stride=2, padding=1)
        self.head = nn.Sequential(nn.Conv2d(96, 64, 3, padding=1), nn.BatchNorm2d(64),
                                  nn.ReLU(), nn.ConvTranspose2d(64, classes, 2, stride=2))

    def forward(self, x):
        c8 = self.stage8(x)
        c16 = self.stage16(c8)
        c32 = self.stage32(c16)
        p16 = self.lat16(c16) + self.up32(self.lat32(c32))
        p8 = self.lat8(c8) + self.up16(p16)
        return self.head(p8)


def randomise_bn(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


MODELS = {
    "mobilenet_v3_large": (lambda: torchvision.models.mobilenet_v3_large(), 224),
    "resnet50": (lambda: torchvision.models.resnet50(), 224),
    "convnext_tiny": (lambda: torchvision.models.convnext_tiny(), 224),
    "seg_fpn": (lambda: SegFPN(), 640),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--names", default=",".join(MODELS))
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.names.split(","):
        torch.manual_seed(0)
        make, size = MODELS[name]
        model = make().eval()
        randomise_bn(model, torch.Generator().manual_seed(1))
        x = torch.randn(1, 3, size, size)
        path = os.path.join(args.out_dir, name + ".onnx")
        # BN kept as nodes: no constant folding, PRESERVE training mode (eval statistics).
        torch.onnx.export(model, x, path, opset_version=13, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.PRESERVE,
                          input_names=["images"], output_names=["output"])
        print(path)


if __name__ == "__main__":
    main()
