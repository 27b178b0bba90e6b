"""Fine-tuning benchmark support: datasets and the pieces that compare rank allocations on them."""
