"""Worked solutions to the exercises of lesson 17, evaluating GANs.

Run from anywhere: python lessons/solutions/17-evaluating-gans.py
"""
import numpy as np

from tinygan import data
from tinygan.metrics import (class_coverage, feature_network, frechet_distance_from_features,
                             kernel_inception_distance, prdc)

net = feature_network("mnist-10k")
train, test = data.load("mnist-10k"), data.load("mnist-10k", split="test")
real = net.features(train.images[:1000])
to_unit = lambda u8: u8.astype(np.float32) / 127.5 - 1                      # noqa: E731

# Exercise 1. The floor against the same 1,000 training digits, from 100, 300 and 1,000
# held-out digits. FID falls as the sample grows: it is biased upwards by about 1/n (the
# covariance of a small sample is noisy, and the noise adds to the distance), so FIDs are
# only comparable at equal sample counts (21.5, 5.9, 4.8 here). KID is unbiased: 0 within
# its spread at every size (the std over subsets), and the spread is what shrinks.
floors = {}
for n in (100, 300, 1000):
    fake = net.features(test.images[:n])
    fid = frechet_distance_from_features(real, fake)
    kid, kid_std = kernel_inception_distance(real, fake, n_subsets=10, subset_size=min(n, 500),
                                             seed=0)
    floors[n] = fid
    print(f"exercise 1: {n:5d} held-out digits: FID {fid:6.2f}, KID {kid:6.2f} +- {kid_std:.2f}")
assert floors[100] > floors[300] > floors[1000]

# Exercise 2. 32 principal components of raw pixels, fitted on 2,000 training digits,
# instead of LeNet's 84 features. The ranking survives here, but the noisy digits move
# most: 36 times the floor in LeNet's features, 3 times in pixel PCA's. The noise is spread
# over all 784 pixels, and 32 principal components (the broad shapes of digits) keep little
# of it, while LeNet's features, trained on clean strokes, react to it strongly. Each
# feature space weighs differences its own way: an FID is a number only together with
# the features it was measured in.
x_fit = to_unit(train.images[1000:3000]).reshape(2000, -1)
mean = x_fit.mean(0)
_, _, vt = np.linalg.svd(x_fit - mean, full_matrices=False)
pca = lambda images: (to_unit(images).reshape(len(images), -1) - mean) @ vt[:32].T  # noqa: E731
pca_f = lambda x01: (x01.reshape(len(x01), -1) - mean) @ vt[:32].T                 # noqa: E731
rng = np.random.default_rng(0)
digits = to_unit(test.images[:500])
ones = train.images[1000:][train.labels[1000:] == 1][:500]
candidates = {
    "held-out digits": digits,
    "digits + noise": np.clip(digits + rng.normal(0, 0.5, digits.shape), -1, 1).astype(np.float32),
    "only 1s (collapsed)": to_unit(ones),
    "pure noise": rng.uniform(-1, 1, digits.shape).astype(np.float32),
}
real_pca = pca(train.images[:1000])
table = {}
for name, images in candidates.items():
    table[name] = (frechet_distance_from_features(real, net.features(images)),
                   frechet_distance_from_features(real_pca, pca_f(images)))
base = table["held-out digits"]
print(f"exercise 2: {'candidate':20s} {'LeNet FID':>10s} {'PCA FID':>9s}   (relative to held-out)")
for name, (lenet, pixels) in table.items():
    print(f"exercise 2: {name:20s} {lenet:10.1f} {pixels:9.1f}   {lenet / base[0]:7.1f} "
          f"{pixels / base[1]:7.1f}")

# Exercise 3. Noise from 0.05 to 0.5 on the held-out digits. Recall and FID react first:
# at 0.2 recall has fallen from 0.95 to 0.79 and FID is 3.5 times its value at 0.05, while
# precision holds at 0.97 and every class is covered. The noisy digits still lie within the
# real digits' k-NN balls (precision), but they drift off as a group, so fewer real digits
# lie within theirs (recall), and their mean and covariance move (FID). Precision moves
# only at 0.5, class coverage last: the classifier still reads a noisy 7 as a 7.
print(f"exercise 3: {'noise':>5s} {'FID':>7s} {'prec':>5s} {'recall':>6s} {'classes':>7s}")
sweep = {}
for sigma in (0.05, 0.1, 0.2, 0.3, 0.5):
    noisy = np.clip(digits + rng.normal(0, sigma, digits.shape), -1, 1).astype(np.float32)
    fake = net.features(noisy)
    fid = frechet_distance_from_features(real, fake)
    pr = prdc(real, fake, k=5)
    classes = class_coverage(net.predict(noisy), 10)["classes_covered"]
    sweep[sigma] = (fid, pr["precision"], pr["recall"], classes)
    print(f"exercise 3: {sigma:5.2f} {fid:7.1f} {pr['precision']:5.2f} {pr['recall']:6.2f} "
          f"{classes:4d}/10")
assert sweep[0.2][2] < sweep[0.05][2] - 0.1 and sweep[0.2][1] > sweep[0.05][1] - 0.05
assert sweep[0.2][3] == 10 and sweep[0.5][0] > sweep[0.05][0]
