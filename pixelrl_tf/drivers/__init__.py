"""Episodes: the one rollout (`rollout`) and the training episode (`learner`)."""
