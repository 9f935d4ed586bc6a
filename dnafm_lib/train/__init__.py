"""MLM pretraining: one module per concern, orchestrated by ``loop.Trainer`` (``loop.train``).

config (validated settings) · data (framing, masking, per-rank batches) · optim (AdamW,
schedule) · distributed (process group, device, precision, FSDP2) · parallelize (activation
checkpointing, compile and FSDP2 applied to the model from outside) · checkpointer (the
Checkpointer: async DCP save, resume) · preemption (SIGTERM/SIGUSR1, exit code 75, the marker
launchers read) · metrics (CSV, TensorBoard, progress, plot) · launch (the one launcher: in
process, torchrun, srun torchrun) · loop (the Trainer: setup, train_step, finish). Each
imports only torch, numpy and the standard library at module level, so
benchmarks/gpu_pretrain.py runs with nothing but PyTorch.

May import: ``core``, ``model``, ``data``.
"""
