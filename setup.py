"""Package layout for pyproject.toml: the top-level configs/ ships as pixelrl_tf/configs.

The gin configs stay at the top of the checkout, where the documented
commands name them (`--gin_file=configs/denoise.gin`); installed, they are
package data that `pixelrl_tf.cli` resolves by bare name.
"""

import setuptools

setuptools.setup(
    packages=(setuptools.find_packages(include=['pixelrl_tf', 'pixelrl_tf.*'])
              + ['pixelrl_tf.configs']),
    package_dir={'pixelrl_tf.configs': 'configs'},
    package_data={
        'pixelrl_tf.configs': ['*.gin'],
        'pixelrl_tf.data': ['*.json'],
        'pixelrl_tf.jobs': ['view_static/*'],
    },
)
