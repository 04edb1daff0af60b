#!/usr/bin/env python3
"""PyTorch reference timing of one fast-style training step, for the real-GPU comparison.

The same step as `wgstyle train` (lengstrom/fast-style-transfer's loss and defaults, see
docs/train.md): a batch of 256x256 photos through the transform network (lengstrom's, as in
torch_transform.py, with gradients), the stylized and the original batch through VGG19 up to
relu5_1 (torch_gatys.py's layers), content relu4_2 (weight 7.5), style relu1_1..relu5_1 (weight
100, Gram targets of one style image), TV (weight 200), backward, one Adam step (lr 1e-3) on the
transform weights. Random weights of the real shapes: timing does not depend on their values.

    python benches/torch_train_step.py --device cuda --batch 4 --size 256 --json train.json
    python benches/torch_train_step.py --device cpu --batch 1 --size 64 --reps 2
"""

import argparse
import json
import statistics

from torch_gatys import CONTENT, STYLE, gram, setup, time_step, vgg_features


def transform(torch, device, width=32):
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(2)
    specs = [(9, 3, width, 1), (3, width, 2 * width, 2), (3, 2 * width, 4 * width, 2)]
    specs += [(3, 4 * width, 4 * width, 1)] * 10
    params = []
    for k, cin, cout, _ in specs + [(3, 4 * width, 2 * width, 0), (3, 2 * width, width, 0), (9, width, 3, 1)]:
        w = torch.randn(cout, cin, k, k, generator=g) * 0.05
        if _ == 0:  # transposed convolution weights are [in, out, k, k]
            w = w.transpose(0, 1).contiguous()
        params.append([w.to(device).requires_grad_(True),
                       torch.zeros(cout, device=device, requires_grad=True),
                       torch.ones(cout, device=device, requires_grad=True)])

    def same(x, k, s):
        pads = []
        for n in (x.shape[3], x.shape[2]):
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)

    def layer(x, i, s, relu=True):
        w, shift, scale = params[i]
        x = F.conv2d(same(x, w.shape[2], s), w, stride=s)
        x = F.instance_norm(x, weight=scale, bias=shift, eps=1e-3)
        return F.relu(x) if relu else x

    def up(x, i):
        w, shift, scale = params[i]
        h, wd = x.shape[2], x.shape[3]
        x = F.conv_transpose2d(x, w, stride=2)[:, :, : 2 * h, : 2 * wd]
        return F.relu(F.instance_norm(x, weight=scale, bias=shift, eps=1e-3))

    def net(x):
        h = layer(layer(layer(x, 0, 1), 1, 2), 2, 2)
        for b in range(5):
            h = h + layer(layer(h, 3 + 2 * b, 1), 4 + 2 * b, 1, relu=False)
        h = up(up(h, 13), 14)
        return torch.tanh(layer(h, 15, 1, relu=False)) * 150 + 127.5
    return net, [p for ps in params for p in ps]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch, cuda = setup(a.device)
    net, params = transform(torch, a.device)
    vgg = vgg_features(torch, a.device)
    g = torch.Generator().manual_seed(3)
    photos = (torch.rand(a.batch, 3, a.size, a.size, generator=g) * 255).to(a.device)
    style = (torch.rand(1, 3, a.size, a.size, generator=g) * 255).to(a.device)
    mean = torch.tensor([103.939, 116.779, 123.68], device=a.device).view(1, 3, 1, 1)
    pre = lambda x: x.flip(1) - mean  # RGB -> BGR, minus the Caffe mean
    with torch.no_grad():
        fs = vgg(pre(style))
        ts = {k: gram(fs[k]) for k in STYLE}
    opt = torch.optim.Adam(params, lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        y = net(photos)
        fy, fx = vgg(pre(y)), vgg(pre(photos))
        lc = sum(((fy[k] - fx[k].detach()) ** 2).mean() for k in CONTENT) * 7.5
        ls = sum(((gram(fy[k]) - ts[k]) ** 2).sum() for k in STYLE) * 100.0 / a.batch
        tv = ((y[:, :, 1:] - y[:, :, :-1]) ** 2).mean() + ((y[:, :, :, 1:] - y[:, :, :, :-1]) ** 2).mean()
        (lc + ls + 200.0 * tv).backward()
        opt.step()

    times = time_step(torch, cuda, step, a.warmup, a.reps)
    ms = statistics.median(times)
    out = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if cuda else "cpu",
           "size": a.size, "batch": a.batch, "step_ms": ms, "min_ms": min(times),
           "max_ms": max(times), "images_per_s": a.batch / ms * 1e3}
    print(f"train step {a.batch}x{a.size}^2: {ms:.2f} ms ({out['images_per_s']:.1f} images/s)", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
