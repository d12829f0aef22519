"""The value head: V(s_t) = w . h_t + b on the policy's last hidden state h_t.

trl 1.16 has no value-head models any more; this is the whole of one. It lives beside the policy
(not inside it), so the policy saves exactly as an sft model or adapter would, and the head goes to
``value_head.safetensors`` next to it (in every checkpoint and in output_dir, LLaMA-Factory's file
name). Zero-initialised weights: every value starts at 0, so the first advantages are the rewards.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

VALUE_HEAD_FILE = "value_head.safetensors"


class ValueHead(torch.nn.Module):
    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.summary = torch.nn.Linear(hidden_size, 1)
        torch.nn.init.zeros_(self.summary.weight)
        torch.nn.init.zeros_(self.summary.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """``[rows, length, hidden]`` -> ``[rows, length]`` values, computed in float32."""
        return self.summary(hidden_states.float()).squeeze(-1)

    def save(self, folder: str | Path) -> None:
        tensors = {f"v_head.{name}": tensor.detach().cpu().contiguous() for name, tensor in self.state_dict().items()}
        save_file(tensors, str(Path(folder) / VALUE_HEAD_FILE))

    def load(self, folder: str | Path) -> None:
        tensors = load_file(str(Path(folder) / VALUE_HEAD_FILE))
        self.load_state_dict({name.removeprefix("v_head."): tensor for name, tensor in tensors.items()})
