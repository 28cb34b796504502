// Placeholder: the synth helper writes this (matrix layout writer).
#pragma once
