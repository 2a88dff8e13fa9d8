"""Keras layers for multi-task ranking: experts, gates, bottoms and towers."""

from mtrec.layers.cgc import CGC
from mtrec.layers.expert_mix import mix_expert_groups
from mtrec.layers.expert_mix import mix_experts
from mtrec.layers.expert_mix import mix_experts_per_gate
from mtrec.layers.expert_mix import mix_gates_over_groups
from mtrec.layers.expert_mix import mix_gates_over_joined
from mtrec.layers.experts import Experts
from mtrec.layers.experts import joined_from_first_linear
from mtrec.layers.gate import Gate
from mtrec.layers.gate_softmax import gate_softmax
from mtrec.layers.gated import GatedBackbone
from mtrec.layers.mixture import MixtureOfExperts
from mtrec.layers.mlp import MLP
from mtrec.layers.mmoe import MMoE
from mtrec.layers.omoe import OMoE
from mtrec.layers.ple import PLE
from mtrec.layers.shared_bottom import SharedBottom
from mtrec.layers.shared_matmuls import apply_layers
from mtrec.layers.shared_matmuls import matmul_layout
from mtrec.layers.shared_matmuls import matmuls_separate
from mtrec.layers.shared_matmuls import separate_matmuls
from mtrec.layers.target_attention import TargetAttention
from mtrec.layers.tower import Tower

__all__ = [
    "CGC",
    "Experts",
    "Gate",
    "GatedBackbone",
    "MLP",
    "MMoE",
    "MixtureOfExperts",
    "OMoE",
    "PLE",
    "SharedBottom",
    "TargetAttention",
    "Tower",
    "apply_layers",
    "gate_softmax",
    "joined_from_first_linear",
    "matmul_layout",
    "matmuls_separate",
    "mix_expert_groups",
    "mix_experts",
    "mix_experts_per_gate",
    "mix_gates_over_groups",
    "mix_gates_over_joined",
    "separate_matmuls",
]
