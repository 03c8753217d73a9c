"""medigan_zoo.networks"""
