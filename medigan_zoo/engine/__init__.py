"""medigan_zoo.engine"""
