"""MLM pretraining: one module per concern, orchestrated by ``loop.train``.

config (validated settings) · data (framing, masking, per-rank batches) · optim (AdamW,
schedule) · distributed (process group, FSDP2, precision) · checkpointing (DCP save/resume,
preemption) · metrics (CSV, TensorBoard, progress, plot) · launch (torchrun / srun torchrun)
· loop (the training loop). Each imports only torch, numpy and the standard library at
module level, so benchmarks/gpu_pretrain.py runs with nothing but PyTorch.
"""
