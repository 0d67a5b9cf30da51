"""EIPNet networks and weight loading."""
from models.checkpoint import CheckpointError, load_generator, save_generator
from models.discriminator import Discriminator
from models.generator import Generator, build_generator

__all__ = ["CheckpointError", "Discriminator", "Generator", "build_generator", "load_generator",
           "save_generator"]
