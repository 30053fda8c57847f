"""Paper 5's own numbers (typed in from shared/papers/5-linnaeus-mobilenet-resnet50.md): Linnaeus 5,
1,200 training and 400 test images per class, 2,000 test images in all."""

import pandas as pd

CLASSES = ["berry", "bird", "dog", "flower", "other"]

TABLE7 = pd.DataFrame(
    {
        "train accuracy": [0.9806, 0.9829, 0.9796, 0.9804, 0.9760, 0.9799],
        "val accuracy": [0.9617, 0.9617, 0.9675, 0.9633, 0.9633, 0.9635],
        "train loss": [0.0762, 0.0675, 0.0809, 0.0714, 0.0865, 0.0765],
        "val loss": [0.1183, 0.1249, 0.1126, 0.1127, 0.1178, 0.1173],
    },
    index=pd.Index(["1", "2", "3", "4", "5", "AVG"], name="k"),
)
"""Table 7: MobileNet, lr 1e-4, best epoch of each CV fold."""

TABLE8 = pd.DataFrame(
    {
        "train accuracy": [0.9635, 0.9678, 0.9799, 0.9528, 0.9449],
        "val accuracy": [0.9502, 0.9528, 0.9635, 0.9599, 0.9460],
        "test accuracy": [0.9465, 0.9562, 0.9670, 0.9602, 0.9545],
        "train loss": [0.0903, 0.0817, 0.0765, 0.1397, 0.1488],
        "val loss": [0.1263, 0.1286, 0.1173, 0.1328, 0.1437],
        "test loss": [0.1335, 0.1275, 0.1150, 0.1294, 0.1349],
    },
    index=pd.Index([1e-2, 1e-3, 1e-4, 1e-5, 1e-6], name="lr"),
)
"""Table 8: MobileNet CV averages per learning rate, and test after retraining."""

TABLE9 = pd.DataFrame(
    {"TP": [383, 391, 395, 384, 381], "TN": [1577, 1596, 1596, 1586, 1579],
     "FP": [23, 4, 4, 14, 21], "FN": [17, 9, 5, 16, 19]},
    index=pd.Index(CLASSES, name="class"),
)
"""Table 9: MobileNet test-set TP/TN/FP/FN (2,000 test images)."""

TABLE10 = pd.DataFrame(
    {"precision": [0.94, 0.99, 0.99, 0.96, 0.95], "recall": [0.96, 0.98, 0.99, 0.96, 0.95],
     "specificity": [0.98, 0.99, 0.99, 0.99, 0.98], "accuracy": [0.98, 0.99, 0.99, 0.98, 0.98],
     "F1": [0.95, 0.98, 0.99, 0.96, 0.95]},
    index=pd.Index(CLASSES, name="class"),
)
"""Table 10 (= Table 15, MobileNet): per-class test metrics."""

TABLE11 = pd.DataFrame(
    {
        "train accuracy": [0.9925, 0.9925, 0.9946, 0.9954, 0.9925],
        "val accuracy": [0.9758, 0.9742, 0.9717, 0.9633, 0.9650],
        "train loss": [0.3579, 0.3576, 0.3488, 0.3591, 0.3749],
        "val loss": [0.3281, 0.3505, 0.3563, 0.3684, 0.3512],
    },
    index=pd.Index(["1", "2", "3", "4", "5"], name="k"),
)
"""Table 11: ResNet50 (best head), CV folds."""

TABLE12 = pd.DataFrame(
    {"precision": [0.96, 0.99, 1.00, 0.97, 0.96], "recall": [0.98, 0.99, 1.00, 0.97, 0.95],
     "specificity": [0.99, 1.00, 1.00, 0.99, 0.99], "accuracy": [0.99, 0.99, 1.00, 0.99, 0.98],
     "F1": [0.97, 0.99, 1.00, 0.97, 0.95]},
    index=pd.Index(CLASSES, name="class"),
)
"""Table 12 (= Table 15, ResNet50): per-class test metrics."""

TABLE13 = pd.DataFrame(
    {"TP": [390, 394, 398, 386, 379], "TN": [1582, 1594, 1598, 1589, 1584],
     "FP": [18, 6, 2, 11, 16], "FN": [10, 6, 2, 14, 21]},
    index=pd.Index(CLASSES, name="class"),
)
"""Table 13: ResNet50 test-set TP/TN/FP/FN."""

TABLE14 = pd.DataFrame(
    {
        "test accuracy": [0.9670, 0.9735],
        "test loss": [0.1150, 0.4271],
        "step time (s)": [0.176, 2.0],
        "trainable params": [5125, 4207621],
        "non-trainable params": [3228864, 22532992],
    },
    index=pd.Index(["MobileNet", "ResNet50"], name="model"),
)
"""Table 14: the two final models (step time: 176 ms and 2 s per training step)."""
