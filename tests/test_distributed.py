"""Training under torchrun: two CPU processes (gloo) train DDIM, MEL-GAN and RAVE for a few steps of a tiny
configuration (RAVE, trained through encode/decode, averages its gradients by hand); both ranks end holding the same weights (each prints a digest of its own), and only
rank 0 writes. Without torchrun the helpers are a no-op."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from conftest import ROOT

from melodymaker import distributed

TINY = {
    "diffusion_model.train": ["--steps", "4", "--batch-size", "2", "--frames", "64", "--channels", "16,16,32",
                              "--attention-heads", "2", "--emb-dim", "32", "--save-every", "2", "--log-every", "2",
                              "--no-progress"],
    "melgan_model.train": ["--steps", "3", "--gan-batch", "2", "--gan-frames", "32", "--g-channels", "16,16,16,16",
                           "--d-channels", "16,16,16,16", "--voc-samples", "2048", "--voc-batch", "2", "--ngf", "4",
                           "--holdout", "0", "--save-every", "2", "--log-every", "1", "--voc-adv-start", "1"],
    "train_rave.train": ["--steps", "4", "--adv-start", "2", "--adv-plateau", "0", "--seed", "0", "--threads", "1",
                         "--holdout", "1", "--channels", "8,8,16,16", "--latent-size", "4", "--batch", "2",
                         "--window", "8192", "--d-width", "4", "--d-scales", "2", "--log-every", "2",
                         "--save-every", "2", "--no-progress", "--no-judges"],
}
WRITES = {"diffusion_model.train": ("ddim.pt", "train_state.pt", "card.json", "log.csv"),
          "melgan_model.train": ("melgan.pt", "train_state.pt", "card.json", "losses.csv"),
          "train_rave.train": ("rave.pt", "train_state.pt", "card.json", "losses.csv")}


def test_one_process_is_rank_0_of_1_and_the_helpers_do_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rank = distributed.setup("cpu")
    assert (rank.rank, rank.world, rank.main, rank.distributed) == (0, 1, True, False)
    net = torch.nn.Linear(2, 2)
    assert distributed.wrap(net, rank) is net and distributed.unwrap(net) is net
    assert distributed.shard(list(range(5)), rank) == [0, 1, 2, 3, 4]
    assert rank.any(True) and not rank.any(False) and rank.mean({"a": 2.0}) == {"a": 2.0} and rank.sum(3) == 3
    a, b = distributed.rank_generator(7, rank), torch.Generator().manual_seed(7)
    assert torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))   # one process draws as before
    two = [distributed.Rank(r, 2) for r in (0, 1)]
    assert [distributed.shard(list(range(5)), r) for r in two] == [[0, 2, 4], [1, 3]]
    with pytest.raises(SystemExit, match="cannot be shared"):
        distributed.shard([1], two[1])
    first = torch.rand(3, generator=distributed.rank_generator(7, two[1]))
    assert not torch.equal(first, torch.rand(3, generator=torch.Generator().manual_seed(7)))
    assert distributed.checksum(net) == distributed.checksum(net) != distributed.checksum(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("module", list(TINY))
def test_two_ranks_train_on_their_shards_and_end_with_the_same_weights(module, library_dir, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", module, "--genres", str(library_dir), "--out", str(out), *TINY[module]],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    digests = dict(re.findall(r"rank (\d)/2: weights ([0-9a-f ]+)", done.stderr))
    assert set(digests) == {"0", "1"}, done.stderr[-3000:]
    assert digests["0"] == digests["1"]                 # each rank's own digest of its own weights
    assert "distributed: 2 ranks (gloo)" in done.stderr
    assert sorted(p.name for p in out.iterdir() if p.name in WRITES[module]) == sorted(WRITES[module])


RAVE_LIKE = '''
import torch
from melodymaker import distributed

class Codec(torch.nn.Module):          # trained through encode/decode, never forward (as RAVE is)
    def __init__(self):
        super().__init__()
        self.enc, self.dec = torch.nn.Linear(8, 3), torch.nn.Linear(3, 8)
    def encode(self, x):
        return self.enc(x)
    def decode(self, z):
        return self.dec(z)

rank = distributed.setup("cpu")
torch.manual_seed(100 + rank.rank)      # different initial weights on purpose: broadcast fixes that
model = Codec()
distributed.broadcast_weights(model, rank)
opt = torch.optim.Adam(model.parameters(), 1e-2)
data = distributed.shard(list(torch.randn(12, 8, generator=torch.Generator().manual_seed(0))), rank)
for step in range(5):
    x = torch.stack(data)
    loss = ((model.decode(model.encode(x)) - x) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    distributed.average_gradients(model, rank)
    opt.step()
distributed.finish(rank, model)
'''


def test_a_model_trained_through_its_own_methods_stays_in_step_by_hand(tmp_path):
    """broadcast_weights + average_gradients: DDP by hand, for RAVE's encode/decode."""
    script = tmp_path / "codec.py"
    script.write_text(RAVE_LIKE)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    digests = dict(re.findall(r"rank (\d)/2: weights ([0-9a-f]+)", done.stderr))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"]
