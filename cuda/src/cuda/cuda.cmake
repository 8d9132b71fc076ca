# Included by cuda/CMakeLists.txt when the CUDA backend is built.
# Native check and benchmark of the CUDA backend (cuda/tests/cuda_*.cpp -> vn_cuda_*): programs
# that drive libvirnuc through the public C ABI and cuBLASLt directly (the GEMM ceiling).
# Not part of the default build: cmake --build build/native --target vn_cuda_check
file(GLOB VN_CUDA_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda_*.cpp)
foreach(t ${VN_CUDA_TESTS})
  get_filename_component(name ${t} NAME_WE)
  add_executable(vn_${name} EXCLUDE_FROM_ALL ${t})
  target_include_directories(vn_${name} PRIVATE include)
  target_compile_options(vn_${name} PRIVATE -O2 -Wall -Wextra -Wno-unused-parameter)
  target_link_libraries(vn_${name} PRIVATE virnuc CUDA::cudart CUDA::cublasLt Threads::Threads)
endforeach()
