"""medigan_zoo.evaluation"""
