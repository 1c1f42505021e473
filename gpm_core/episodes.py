"""Episodes: the sets of T images a memory is written with.

An episode is T images drawn at random from the whole set (GPM section 3.1: "we sample 32
images to form the episode"; DKM section 4: "episodes with 32 patterns randomly sampled
from all classes"). `EpisodeSampler` yields training batches (B, T, C, H, W);
`test_episodes` gives the fixed evaluation episodes, the same for every run;
`unwritten_query_episodes` pairs them with unwritten images of the same classes;
`class_episodes` and `capacity_episodes` draw episodes from a few classes for the DKM
capacity test. Every function takes an `ImageSet` (`gpm_core.datasets`) and returns
float images in [0, 1].
"""

from __future__ import annotations

import warnings

import torch

from .datasets import ImageSet


def _as_images(images) -> tuple[torch.Tensor, int]:
    if isinstance(images, ImageSet):
        return images.images, images.max_value
    return images, (255 if images.dtype == torch.uint8 else 1)


class EpisodeSampler:
    """Endless training batches of B episodes of T random images, (B, T, C, H, W) float in [0, 1].

    Images are drawn without replacement through a random permutation of the set, a new
    one each epoch; the incomplete tail of an epoch is dropped (as the authors' DataLoader
    with shuffle=True and a full-batch check). All randomness comes from `generator`, and
    `state_dict()` / `load_state_dict()` capture it, so a resumed run sees the same batches.
    `images` may be an ImageSet or a tensor (N, C, H, W); it may live on any device.
    """

    def __init__(self, images, T: int, batch_size: int, generator: torch.Generator | None = None):
        self.images, self.max_value = _as_images(images)
        self.T, self.batch_size = T, batch_size
        self.per_batch = T * batch_size
        if len(self.images) < self.per_batch:
            raise ValueError(f"{len(self.images)} images cannot fill one batch of "
                             f"{batch_size} episodes x T = {T} images")
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.perm = torch.empty(0, dtype=torch.long)
        self.pos = 0
        self.epoch = 0

    def __iter__(self):
        return self

    def next_indices(self) -> torch.Tensor:
        if self.pos + self.per_batch > len(self.perm):
            self.perm = torch.randperm(len(self.images), generator=self.generator)
            self.pos = 0
            self.epoch += 1
        idx = self.perm[self.pos:self.pos + self.per_batch]
        self.pos += self.per_batch
        return idx.view(self.batch_size, self.T)

    def __next__(self) -> torch.Tensor:
        idx = self.next_indices().to(self.images.device)
        return self.images[idx].float() / self.max_value  # (B, T, C, H, W)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "perm": self.perm.clone(),
                "pos": self.pos, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.perm, self.pos, self.epoch = state["perm"].clone(), int(state["pos"]), int(state["epoch"])


def _draw(pool: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` entries of `pool`, without replacement while possible: successive random
    permutations of the pool, concatenated."""
    reps = -(-count // len(pool))
    order = torch.cat([pool[torch.randperm(len(pool), generator=generator)] for _ in range(reps)])
    return order[:count]


def test_episodes(imageset, T: int, episodes: int, seed: int) -> torch.Tensor:
    """The fixed evaluation episodes (episodes, T, C, H, W) float in [0, 1]: a permutation of
    the test set drawn from `seed` (EvalConfig.seed), so every run of every model scores the
    same images. Images repeat only when episodes * T exceeds the test set."""
    images, max_value = _as_images(imageset)
    idx = test_episode_indices(len(images), T, episodes, seed)
    return images[idx.to(images.device)].float() / max_value


def test_episode_indices(n_images: int, T: int, episodes: int, seed: int) -> torch.Tensor:
    """The indices (episodes, T) of `test_episodes`: a permutation of range(n_images) drawn
    from `seed` (repeated when episodes * T exceeds n_images)."""
    g = torch.Generator().manual_seed(seed)
    return _draw(torch.arange(n_images), episodes * T, g).view(episodes, T)


test_episode_indices.__test__ = False


test_episodes.__test__ = False  # not a pytest test


def unwritten_query_episodes(imageset: ImageSet, T: int, episodes: int, seed: int
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs (X_write, X_query), each (episodes, T, C, H, W) float in [0, 1], for the bound on
    images that were *not* written: X_query[e, t] is another image of the same class as
    X_write[e, t] (another drawing of the same Omniglot character, another MNIST digit of
    the same label), never one of the images written in episode e. X_write is exactly
    `test_episodes(imageset, T, episodes, seed)`, so the two bounds score the same memories;
    the queries are drawn from `seed + 1`. A written image whose class has no image outside
    its episode (CelebA identities with a single test image) is queried with another
    unwritten image of any class, and a warning counts them."""
    labels = imageset.labels
    write = test_episode_indices(len(labels), T, episodes, seed)
    g = torch.Generator().manual_seed(seed + 1)
    by_label: dict[int, torch.Tensor] = {}
    for lab in torch.unique(labels).tolist():
        by_label[lab] = torch.nonzero(labels == lab).reshape(-1)
    query = torch.empty_like(write)
    orphans = 0
    for e in range(episodes):
        unwritten = None  # every image not in episode e, computed when first needed
        for t in range(T):
            pool = by_label[int(labels[write[e, t]])]
            pool = pool[~torch.isin(pool, write[e])]
            if len(pool) == 0:
                # A class with no image outside the episode (a CelebA identity with one test
                # image; an Omniglot character whose drawings are all in a very long episode):
                # the query is any unwritten image. Never reached on MNIST, Omniglot,
                # FashionMNIST or CIFAR at T = 32, whose results are unchanged by this branch.
                if unwritten is None:
                    everything = torch.arange(len(labels))
                    unwritten = everything[~torch.isin(everything, write[e])]
                pool = unwritten
                if len(pool) == 0:
                    raise ValueError(f"episode {e} holds every test image; use shorter episodes")
                orphans += 1
            query[e, t] = pool[torch.randint(len(pool), (1,), generator=g)]
    if orphans:
        warnings.warn(f"unwritten_query_episodes: {orphans} of {episodes * T} written images have no "
                      f"image of their class outside their episode; their queries are other unwritten "
                      f"images of any class")
    images, max_value = _as_images(imageset)
    return images[write].float() / max_value, images[query].float() / max_value


def class_episodes(imageset: ImageSet, T: int, n_classes: int, generator: torch.Generator,
                   episodes: int = 1) -> torch.Tensor:
    """Episodes drawn from `n_classes` random classes each (DKM section 4.1, capacity test:
    "episodes with lengths ranging from 10 to 200, drawn from 2, 4, or 8 classes").
    Returns (episodes, T, C, H, W) float in [0, 1]. Within an episode the images of the
    chosen classes are used without replacement until they run out, then again."""
    classes = torch.unique(imageset.labels)
    if n_classes > len(classes):
        raise ValueError(f"{n_classes} classes asked, the set has {len(classes)}")
    out = []
    for _ in range(episodes):
        chosen = classes[torch.randperm(len(classes), generator=generator)[:n_classes]]
        pool = torch.nonzero(torch.isin(imageset.labels, chosen)).reshape(-1)
        out.append(_draw(pool, T, generator))
    idx = torch.stack(out)
    return imageset.images[idx.to(imageset.images.device)].float() / imageset.max_value


def capacity_episodes(test_set: ImageSet, L: int, n_classes: int, episodes: int, seed: int):
    """`episodes` episodes of L images from n_classes random classes each
    (`class_episodes`, generator seeded with `seed`), with the index of every image in
    `test_set` and its label: ((episodes, L, C, H, W) float, (episodes, L) labels,
    (episodes, L) indices). The indices come from a second call with an identically seeded
    generator on a set whose "images" are their own indices, so they are the same draw."""
    X = class_episodes(test_set, L, n_classes, torch.Generator().manual_seed(seed), episodes)
    n = len(test_set)
    as_index = ImageSet(torch.arange(n).view(n, 1, 1, 1), test_set.labels, {"max_value": 1})
    idx = class_episodes(as_index, L, n_classes, torch.Generator().manual_seed(seed), episodes)
    idx = idx.reshape(episodes, L).round().long()
    return X, test_set.labels[idx], idx
