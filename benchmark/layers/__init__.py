"""Layers the models share, apart from any one model: the baselines and TedRec both build on them.

`blocks`: the paper's layers (RecBole's Transformer, sequence embedding, learnable filter, UniSRec's MoE
adaptor, cosine scoring, masks, RecBole's init); `kernels`: the CPU kernels they run on (faster dropout masks,
the memory-lean expert mixture); `sasrec`: the SASRec backbone the SASRec family and TedRec extend, with the
defaults and dropout grid they share.
"""
