"""A word-level language model as pytorch/examples' word_language_model writes one, run on dtorch and torch.

The program's patterns: an RNN/LSTM/GRU model with ``getattr(nn, rnn_type)``, tied encoder/decoder weights,
``weight.new_zeros`` hidden states, batchify / get_batch over a token stream, ``repackage_hidden`` (detach),
``clip_grad_norm_`` and the hand-written SGD update ``p.data.add_(p.grad, alpha=-lr)``, NLLLoss on
``log_softmax``, evaluation under ``no_grad``; the Transformer model subclasses ``nn.Transformer`` and masks
with ``log(tril(ones))``. Also an LSTM over padded sentences with ``pack_padded_sequence``. From the same
weights and data the losses must match torch's step by step (no dropout), and training must lower them.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import dtorch

VOCAB, BSZ, BPTT, CLIP, LR = 12, 4, 6, 0.25, 2.0


def corpus(n: int = 200, seed: int = 0) -> np.ndarray:
    """A token stream with structure to learn: a counting pattern with occasional noise."""
    rng = np.random.default_rng(seed)
    toks = np.arange(n) % (VOCAB - 2)
    flip = rng.random(n) < 0.1
    toks[flip] = rng.integers(0, VOCAB, flip.sum())
    return toks


def models(lib):
    """The two model classes of the program, written against ``lib`` (dtorch or torch)."""
    nn, F = lib.nn, lib.nn.functional

    class RNNModel(nn.Module):
        def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.0, tie_weights=False):
            super().__init__()
            self.ntoken = ntoken
            self.drop = nn.Dropout(dropout)
            self.encoder = nn.Embedding(ntoken, ninp)
            if rnn_type in ("LSTM", "GRU"):
                self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
            else:
                self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity={"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type],
                                  dropout=dropout)
            self.decoder = nn.Linear(nhid, ntoken)
            if tie_weights:
                self.decoder.weight = self.encoder.weight
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)
            self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers

        def forward(self, input, hidden):
            emb = self.drop(self.encoder(input))
            output, hidden = self.rnn(emb, hidden)
            decoded = self.decoder(self.drop(output)).view(-1, self.ntoken)
            return F.log_softmax(decoded, dim=1), hidden

        def init_hidden(self, bsz):
            weight = next(self.parameters())
            if self.rnn_type == "LSTM":
                return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))
            return weight.new_zeros(self.nlayers, bsz, self.nhid)

    class PositionalEncoding(nn.Module):
        def __init__(self, d_model, dropout=0.0, max_len=64):
            super().__init__()
            self.dropout = nn.Dropout(p=dropout)
            pe = lib.zeros(max_len, d_model)
            position = lib.arange(0, max_len, dtype=lib.float).unsqueeze(1)
            div_term = lib.exp(lib.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
            pe[:, 0::2] = lib.sin(position * div_term)
            pe[:, 1::2] = lib.cos(position * div_term)
            self.register_buffer("pe", pe.unsqueeze(0).transpose(0, 1))

        def forward(self, x):
            return self.dropout(x + self.pe[:x.size(0), :])

    class TransformerModel(nn.Transformer):
        def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.0):
            super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid, num_encoder_layers=nlayers,
                             dropout=dropout)
            self.src_mask = None
            self.pos_encoder = PositionalEncoding(ninp, dropout)
            self.input_emb = nn.Embedding(ntoken, ninp)
            self.ninp = ninp
            self.decoder = nn.Linear(ninp, ntoken)
            nn.init.uniform_(self.input_emb.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)

        def forward(self, src, has_mask=True):
            if has_mask:
                if self.src_mask is None or self.src_mask.size(0) != len(src):
                    self.src_mask = lib.log(lib.tril(lib.ones(len(src), len(src))))
            else:
                self.src_mask = None
            src = self.pos_encoder(self.input_emb(src) * math.sqrt(self.ninp))
            output = self.decoder(self.encoder(src, mask=self.src_mask))
            return F.log_softmax(output, dim=-1)

    return RNNModel, TransformerModel


def batchify(lib, data: np.ndarray, bsz: int):
    data = lib.tensor(data)
    nbatch = data.size(0) // bsz
    return data.narrow(0, 0, nbatch * bsz).view(bsz, -1).t().contiguous()


def get_batch(source, i: int):
    seq_len = min(BPTT, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)


def repackage_hidden(h):
    if isinstance(h, tuple):
        return tuple(repackage_hidden(v) for v in h)
    return h.detach()


def train_epoch(lib, model, source, is_transformer: bool) -> list:
    model.train()
    criterion = lib.nn.NLLLoss()
    hidden = None if is_transformer else model.init_hidden(BSZ)
    losses = []
    for i in range(0, source.size(0) - 1, BPTT):
        data, targets = get_batch(source, i)
        model.zero_grad()
        if is_transformer:
            output = model(data).view(-1, VOCAB)
        else:
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        lib.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-LR)
        losses.append(loss.item())
    return losses


def evaluate(lib, model, source, is_transformer: bool) -> float:
    model.eval()
    total = 0.0
    hidden = None if is_transformer else model.init_hidden(BSZ)
    with lib.no_grad():
        for i in range(0, source.size(0) - 1, BPTT):
            data, targets = get_batch(source, i)
            if is_transformer:
                output = model(data).view(-1, VOCAB)
            else:
                output, hidden = model(data, hidden)
                hidden = repackage_hidden(hidden)
            total += len(data) * lib.nn.functional.nll_loss(output, targets).item()
    return total / (len(source) - 1)


def build(lib, kind: str, dropout: float = 0.0):
    rnn_model, transformer_model = models(lib)
    if kind == "Transformer":
        return transformer_model(VOCAB, 8, 2, 16, 2, dropout)
    return rnn_model(kind, VOCAB, 8, 8, 2, dropout, tie_weights=True)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN_TANH", "Transformer"])
def test_language_model_tracks_torch(kind, torch):
    torch.manual_seed(0)
    tm = build(torch, kind)
    dm = build(dtorch, kind)
    assert list(dm.state_dict()) == list(tm.state_dict())
    dm.load_state_dict({k: dtorch.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    if kind != "Transformer":
        assert dm.decoder.weight is dm.encoder.weight
    data = corpus()
    runs = {}
    for lib, m in ((dtorch, dm), (torch, tm)):
        train, val = batchify(lib, data[:160], BSZ), batchify(lib, data[160:], BSZ)
        before = evaluate(lib, m, val, kind == "Transformer")
        losses = train_epoch(lib, m, train, kind == "Transformer") + train_epoch(lib, m, train, kind == "Transformer")
        runs[lib.__name__] = (before, losses, evaluate(lib, m, val, kind == "Transformer"))
    (b0, l0, a0), (b1, l1, a1) = runs["dtorch"], runs["torch"]
    np.testing.assert_allclose([b0, *l0, a0], [b1, *l1, a1], rtol=2e-4, atol=1e-5)
    assert a0 < b0 and np.mean(l0[-5:]) < np.mean(l0[:5])


def test_dropout_training_lowers_loss():
    dtorch.manual_seed(1)
    m = build(dtorch, "LSTM", dropout=0.2)
    data = corpus(seed=1)
    train, val = batchify(dtorch, data[:160], BSZ), batchify(dtorch, data[160:], BSZ)
    before = evaluate(dtorch, m, val, False)
    for _ in range(3):
        train_epoch(dtorch, m, train, False)
    assert evaluate(dtorch, m, val, False) < before


def sentence_batch(lib, rng: np.random.Generator):
    """Padded sentences (B x T, batch_first) of different lengths, their lengths and next-token targets."""
    lengths = rng.integers(3, 8, 5)
    tokens = np.zeros((5, 8), np.int64)
    for b, n in enumerate(lengths):
        start = rng.integers(0, VOCAB - 2)
        tokens[b, :n] = (start + np.arange(n)) % (VOCAB - 2) + 1
    return lib.tensor(tokens), lib.tensor(lengths)


def test_packed_sentences_lm_tracks_torch(torch):
    """An LSTM over padded sentences: pack_padded_sequence (unsorted), pad_packed_sequence, masked loss."""
    def make(lib):
        nn = lib.nn

        class Tagger(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(VOCAB, 6, padding_idx=0)
                self.rnn = nn.LSTM(6, 7, num_layers=2, batch_first=True, bidirectional=True)
                self.out = nn.Linear(14, VOCAB)

            def forward(self, tokens, lengths):
                packed = nn.utils.rnn.pack_padded_sequence(self.emb(tokens), lengths, batch_first=True,
                                                           enforce_sorted=False)
                out, _ = self.rnn(packed)
                out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=tokens.size(1))
                return self.out(out)
        return Tagger()

    torch.manual_seed(0)
    tm, dm = make(torch), make(dtorch)
    dm.load_state_dict({k: dtorch.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    runs = []
    for lib, m in ((dtorch, dm), (torch, tm)):
        rng = np.random.default_rng(0)
        opt = lib.optim.Adam(m.parameters(), lr=0.02)
        losses = []
        for _ in range(6):
            tokens, lengths = sentence_batch(lib, rng)
            logits = m(tokens[:, :-1], lengths - 1)
            loss = lib.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), tokens[:, 1:].reshape(-1),
                                                   ignore_index=0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs.append(losses)
    np.testing.assert_allclose(runs[0], runs[1], rtol=2e-4)
    assert runs[0][-1] < runs[0][0]
