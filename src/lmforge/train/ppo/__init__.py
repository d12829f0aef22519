"""PPO for language models, written on torch/transformers (trl 1.16 has no PPO any more).

- ``core``: the math on fixed tensors (per-token KL penalty, GAE, clipped policy and value
  objectives, whitening, KL controllers, running score moments), each formula in its docstring;
- ``value_head``: the value head (a linear layer on the policy's last hidden state);
- ``rollout``: batched sampling from the live policy with the KV cache, on the inference engine's
  batch pieces (infer/batch.py, infer/sampling.py);
- ``scores``: where the score of an answer comes from (a reward model trained by stage rm, an HTTP
  scoring endpoint, or reward functions);
- ``trainer``: ``PpoTrainer``, a transformers Trainer whose step is one PPO iteration.
"""
