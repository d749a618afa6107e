"""AF-CLAP, the AF2 audio encoder: an HTSAT Swin transformer over a 10-s log-mel window, with ``aff_2d`` fusion.

One window's log-mel (1001 frames x 64 bins) is stretched to 1024 frames, folded into a 256 x 256 image, cut into
4 x 4 patches and run through four Swin stages; the last stage's 2048-dim tokens (64 per window) are the output.
The fusion branch (a wide convolution over three local views, merged by attentional feature fusion) only runs for
windows marked ``fuse``: AF2 windows are exactly 10 s, so at inference no window is fused, and in training one
random window per clip is (the released training behaviour, which keeps the fusion weights trained).
Submodule names follow the released checkpoint so that its weights load by name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from afcot_flamingo.af2.config import ClapConfig


def _window_partition(x: torch.Tensor, size: int) -> torch.Tensor:
    b, h, w, c = x.shape
    x = x.view(b, h // size, size, w // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, size * size, c)


def _window_merge(windows: torch.Tensor, size: int, h: int, w: int) -> torch.Tensor:
    c = windows.shape[-1]
    x = windows.view(-1, h // size, w // size, size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch of a sample with probability ``p`` (training only)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = (torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device) >= self.p).to(x.dtype)
        return x * keep / (1.0 - self.p)


class WindowAttention(nn.Module):
    """Self-attention inside square windows, with a learned relative-position bias."""

    relative_position_index: torch.Tensor

    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        coords = torch.stack([ys.flatten(), xs.flatten()])
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * window - 1) + rel[..., 1], persistent=False)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, shift_mask: torch.Tensor | None) -> torch.Tensor:
        n_win, n, c = x.shape
        q, k, v = self.qkv(x).view(n_win, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.relative_position_index.flatten()].view(n, n, -1)
        bias = bias.permute(2, 0, 1).unsqueeze(0).to(q.dtype)
        if shift_mask is not None:
            per_image = shift_mask.shape[0]
            bias = (bias.unsqueeze(0) + shift_mask.to(q.dtype)[None, :, None]).reshape(1, per_image, *bias.shape[1:])
            bias = bias.expand(n_win // per_image, -1, -1, -1, -1).reshape(n_win, *bias.shape[2:])
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(n_win, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    """Pre-norm window attention (shifted by half a window in odd blocks) and MLP, both residual."""

    attn_mask: torch.Tensor | None

    def __init__(self, dim: int, resolution: tuple[int, int], heads: int, window: int, shift: int,
                 mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.resolution = resolution
        if min(resolution) <= window:
            window, shift = min(resolution), 0
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = None
        if shift:
            h, w = resolution
            regions = torch.zeros(1, h, w, 1)
            cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
            for label, (hs, ws) in enumerate((hs, ws) for hs in cuts for ws in cuts):
                regions[:, hs, ws, :] = label
            ids = _window_partition(regions, window).squeeze(-1)
            diff = ids.unsqueeze(1) - ids.unsqueeze(2)
            mask = torch.zeros_like(diff).masked_fill(diff != 0, -100.0)
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        b, _, c = x.shape
        y = self.norm1(x).view(b, h, w, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(_window_partition(y, self.window), self.attn_mask)
        y = _window_merge(y, self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Halves the resolution: each 2 x 2 neighbourhood becomes one token of twice the width."""

    def __init__(self, resolution: tuple[int, int], dim: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class Stage(nn.Module):
    def __init__(self, dim: int, resolution: tuple[int, int], depth: int, heads: int, window: int,
                 mlp_ratio: float, drop_paths: list[float], downsample: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, resolution, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio, drop_paths[i])
            for i in range(depth))
        self.downsample = PatchMerging(resolution, dim) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class AttentionalFusion(nn.Module):
    """Attentional feature fusion (2-D): a learned per-position mix of the global and the local view."""

    def __init__(self, channels: int, r: int = 4) -> None:
        super().__init__()
        inner = channels // r
        self.local_att = nn.Sequential(
            nn.Conv2d(channels, inner, 1), nn.BatchNorm2d(inner), nn.ReLU(inplace=True),
            nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))
        self.global_att = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, inner, 1), nn.BatchNorm2d(inner), nn.ReLU(inplace=True),
            nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        both = x + residual
        single = both.shape[0] == 1
        if single:  # batch norm needs two samples in training
            both = torch.cat([both, both])
        weight = torch.sigmoid(self.local_att(both) + self.global_att(both))
        if single:
            weight = weight[:1]
        return 2 * x * weight + 2 * residual * (1 - weight)


class PatchEmbed(nn.Module):
    """4 x 4 patches of the global view; for fused windows, the local views merged in by attentional fusion."""

    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)
        self.mel_conv2d = nn.Conv2d(1, dim, kernel_size=(patch, patch * 3), stride=(patch, patch * 3))
        self.fusion_model = AttentionalFusion(dim)

    def forward(self, x: torch.Tensor, fuse: torch.Tensor) -> torch.Tensor:
        out = self.proj(x[:, :1])
        idx = fuse.nonzero().flatten()
        if len(idx):
            local = x[idx, 1:]
            b, views, h, w = local.shape
            local = self.mel_conv2d(local.reshape(b * views, 1, h, w))
            local = local.view(b, views, *local.shape[1:]).permute(0, 2, 3, 1, 4).flatten(3)
            width = out.shape[-1]
            local = F.pad(local, (0, max(0, width - local.shape[-1])))[..., :width]
            fused = self.fusion_model(out[idx], local).to(out.dtype)
            out = out.index_put((idx,), fused)
        return self.norm(out.flatten(2).transpose(1, 2))


class AfClap(nn.Module):
    """HTSAT with fusion: ``(windows, frames, mel_bins)`` log-mels → ``(windows, 64, out_dim)`` tokens."""

    def __init__(self, config: ClapConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.freq_ratio = c.spec_size // c.mel_bins
        self.bn0 = nn.BatchNorm2d(c.mel_bins)
        self.patch_embed = PatchEmbed(c.patch_size, c.embed_dim)
        side = c.spec_size // c.patch_size
        rates = torch.linspace(0, c.drop_path_rate, sum(c.depths)).tolist()
        self.layers = nn.ModuleList()
        for i, depth in enumerate(c.depths):
            start = sum(c.depths[:i])
            self.layers.append(Stage(c.embed_dim * 2**i, (side // 2**i, side // 2**i), depth, c.num_heads[i],
                                     c.window_size, c.mlp_ratio, rates[start:start + depth],
                                     downsample=i < len(c.depths) - 1))
        self.norm = nn.LayerNorm(c.out_dim)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def _image(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, frames, mels) → (N, C, spec, spec): stretch time, then fold it into ``freq_ratio`` rows."""
        frames = self.config.spec_size * self.freq_ratio
        if x.shape[2] < frames:
            x = F.interpolate(x, (frames, x.shape[3]), mode="bicubic", align_corners=True)
        n, c, t, f = x.shape
        x = x.transpose(2, 3).reshape(n, c, f, self.freq_ratio, t // self.freq_ratio)
        return x.permute(0, 1, 3, 2, 4).reshape(n, c, f * self.freq_ratio, t // self.freq_ratio)

    @staticmethod
    def _drop_stripes(x: torch.Tensor, dim: int, width: int, stripes: int = 2) -> torch.Tensor:
        """SpecAugment: per window, ``stripes`` random bands of up to ``width`` along ``dim`` set to zero."""
        keep = torch.ones_like(x)
        size = x.shape[dim]
        for n in range(x.shape[0]):
            for _ in range(stripes):
                span = int(torch.randint(0, width, (1,)))
                start = int(torch.randint(0, size - span, (1,)))
                keep[n].narrow(dim - 1, start, span).zero_()
        return x * keep

    def forward(self, mel: torch.Tensor, fuse: torch.Tensor | None = None) -> torch.Tensor:
        if fuse is None:
            fuse = torch.zeros(mel.shape[0], dtype=torch.bool, device=mel.device)
        x = mel.unsqueeze(1).expand(-1, 4, -1, -1)  # global view + three local views (equal for 10-s windows)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        if self.training and self.config.spec_augment:
            x = self._drop_stripes(self._drop_stripes(x, 2, 64), 3, 8)
        x = self.patch_embed(self._image(x), fuse)
        for stage in self.layers:
            x = stage(x)
        x = self.norm(x)
        n, tokens, dim = x.shape
        side = int(tokens**0.5)
        x = x.transpose(1, 2).reshape(n, dim, side, side)
        rows = side // self.freq_ratio
        x = x.reshape(n, dim, self.freq_ratio, rows, side).permute(0, 1, 3, 2, 4).reshape(n, dim, rows, -1)
        return x.flatten(2).transpose(1, 2)
